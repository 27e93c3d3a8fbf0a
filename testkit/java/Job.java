package flinkguard.testjob;

import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.ReduceFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * flinkguard's test job. It compiles unchanged against Flink 1.20 and 2.x and exercises what a
 * secured cluster must keep working: checkpoints (JobManager to TaskManager RPC, state), the new
 * Source API, and a keyBy whose records cross between TaskManagers (the data plane).
 *
 * Arguments: [job name]. Runs until cancelled.
 */
public final class Job {
    public static void main(String[] args) throws Exception {
        String name = args.length > 0 ? args[0] : "flinkguard-test-job";
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(1000);
        env.fromSequence(0, Long.MAX_VALUE)
                .name("sequence")
                .map(new Throttle())
                .name("throttle")
                .keyBy(new Modulo())
                .reduce(new Sum())
                .name("sum-per-key")
                .filter(new Nothing())
                .sinkTo(new DiscardingSink<>())
                .name("discard");
        env.execute(name);
    }

    /** Slows the source to about a thousand records per second per subtask. */
    public static final class Throttle implements MapFunction<Long, Long> {
        @Override
        public Long map(Long value) throws Exception {
            Thread.sleep(1);
            return value;
        }
    }

    /** Eight keys, so both parallel instances receive records from both TaskManagers. */
    public static final class Modulo implements KeySelector<Long, Long> {
        @Override
        public Long getKey(Long value) {
            return value % 8;
        }
    }

    /** Keyed state that every checkpoint has to snapshot. */
    public static final class Sum implements ReduceFunction<Long> {
        @Override
        public Long reduce(Long a, Long b) {
            return a + b;
        }
    }

    /** Drops everything before the sink. */
    public static final class Nothing implements FilterFunction<Long> {
        @Override
        public boolean filter(Long value) {
            return false;
        }
    }
}
