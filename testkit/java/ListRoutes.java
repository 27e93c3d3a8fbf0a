package flinkguard.testkit;

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Enumeration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Lists every REST route a Flink distribution defines, from the distribution itself.
 *
 * <p>Usage: {@code java -cp "listroutes.jar:<FLINK_HOME>/lib/*" flinkguard.testkit.ListRoutes
 * <FLINK_HOME>/lib/flink-dist-X.jar}
 *
 * <p>Every concrete class in the given jar that implements {@code
 * org.apache.flink.runtime.rest.handler.RestHandlerSpecification} (the {@code MessageHeaders} of
 * the runtime, the web-submission jar handlers, the log-file and static-file specifications) is
 * instantiated and asked for its method and URL. Stdout gets one line per route:
 * {@code METHOD<TAB>URL<TAB>ClassName<TAB>versions}, where versions are the comma-separated URL
 * prefixes ({@code v1}) under which Flink also registers the route (it also registers every
 * route without a prefix).
 *
 * <p>A route must never disappear silently: a class that implements the interface but cannot be
 * instantiated, or a class of Flink's REST, web-monitor or dispatcher packages that cannot even be
 * loaded, is reported on stderr and fails the run. Decorators (classes whose every constructor
 * takes another specification, such as the client's {@code UrlPrefixDecorator}) wrap a route
 * defined elsewhere; they are noted on stderr and do not fail the run.
 *
 * <p>It uses reflection only, so it compiles without Flink on the classpath and runs against any
 * Flink version. Exit status: 0 on success, 1 on usage errors, 2 when no route was found (the jar
 * is not flink-dist), 3 when a class could not be loaded or instantiated.
 */
public final class ListRoutes {
    private static final String SPEC = "org.apache.flink.runtime.rest.handler.RestHandlerSpecification";

    private ListRoutes() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: ListRoutes <flink-dist jar>");
            System.exit(1);
        }
        ClassLoader loader = ListRoutes.class.getClassLoader();
        Class<?> spec = Class.forName(SPEC, false, loader);

        Set<String> lines = new TreeSet<>();
        List<String> unloadable = new ArrayList<>();
        int failures = 0;
        int loaded = 0;
        try (JarFile jar = new JarFile(args[0])) {
            Enumeration<JarEntry> entries = jar.entries();
            while (entries.hasMoreElements()) {
                String entry = entries.nextElement().getName();
                if (!entry.endsWith(".class")
                        || entry.startsWith("META-INF/")
                        || entry.endsWith("module-info.class")
                        || entry.endsWith("package-info.class")) {
                    continue;
                }
                String name = entry.substring(0, entry.length() - ".class".length()).replace('/', '.');
                Class<?> cls;
                try {
                    // Load without running static initializers: many classes in flink-dist need
                    // optional dependencies (Hadoop, YARN...) that are not on the classpath.
                    cls = Class.forName(name, false, loader);
                    loaded++;
                } catch (Throwable e) {
                    // Shaded third-party code routinely references absent optional classes; only
                    // Flink's own REST and web-monitor packages could hide a route.
                    if (mayHoldRoutes(name)) {
                        unloadable.add(name + ": " + e);
                    }
                    continue;
                }
                if (!spec.isAssignableFrom(cls)
                        || cls.isInterface()
                        || Modifier.isAbstract(cls.getModifiers())) {
                    continue;
                }
                List<Object> instances;
                try {
                    instances = instances(cls, spec);
                } catch (Throwable e) {
                    System.err.println("cannot instantiate " + name + ": " + describe(e));
                    failures++;
                    continue;
                }
                if (instances.isEmpty()) {
                    if (isDecorator(cls, spec)) {
                        System.err.println(
                                "note: skipped "
                                        + name
                                        + ": it decorates another specification (every"
                                        + " constructor takes one), so it has no route of its own");
                    } else {
                        System.err.println(
                                "cannot instantiate "
                                        + name
                                        + ": no static getInstance(), no public static final"
                                        + " instance field and no no-arg constructor");
                        failures++;
                    }
                    continue;
                }
                for (Object instance : instances) {
                    try {
                        lines.add(describeRoute(cls, instance));
                    } catch (Throwable e) {
                        System.err.println("cannot read the route of " + name + ": " + describe(e));
                        failures++;
                    }
                }
            }
        }
        for (String line : unloadable) {
            System.err.println("cannot load " + line);
        }
        for (String line : lines) {
            System.out.println(line);
        }
        failures += unloadable.size();
        System.err.println(
                "ListRoutes: "
                        + loaded
                        + " classes loaded, "
                        + lines.size()
                        + " routes, "
                        + failures
                        + " failures");
        System.exit(failures > 0 ? 3 : lines.isEmpty() ? 2 : 0);
    }

    private static boolean isDecorator(Class<?> cls, Class<?> spec) {
        Constructor<?>[] constructors = cls.getDeclaredConstructors();
        if (constructors.length == 0) {
            return false;
        }
        for (Constructor<?> constructor : constructors) {
            boolean wraps = false;
            for (Class<?> parameter : constructor.getParameterTypes()) {
                wraps |= spec.isAssignableFrom(parameter);
            }
            if (!wraps) {
                return false;
            }
        }
        return true;
    }

    private static boolean mayHoldRoutes(String name) {
        return name.startsWith("org.apache.flink.runtime.rest.")
                || name.startsWith("org.apache.flink.runtime.webmonitor.")
                || name.startsWith("org.apache.flink.runtime.dispatcher.");
    }

    /**
     * The instances of a specification class: its {@code getInstance()}, else every public
     * static final field holding an instance of exactly this class, else a new instance from its
     * no-arg constructor.
     */
    private static List<Object> instances(Class<?> cls, Class<?> spec) throws Exception {
        List<Object> found = new ArrayList<>();
        try {
            Method getInstance = cls.getDeclaredMethod("getInstance");
            if (Modifier.isStatic(getInstance.getModifiers())
                    && spec.isAssignableFrom(getInstance.getReturnType())) {
                getInstance.setAccessible(true);
                found.add(getInstance.invoke(null));
                return found;
            }
        } catch (NoSuchMethodException e) {
            // Fall through to fields and constructors.
        }
        for (Field field : cls.getDeclaredFields()) {
            int mods = field.getModifiers();
            if (Modifier.isPublic(mods)
                    && Modifier.isStatic(mods)
                    && Modifier.isFinal(mods)
                    && spec.isAssignableFrom(field.getType())) {
                Object value = field.get(null);
                if (value != null && value.getClass() == cls && !found.contains(value)) {
                    found.add(value);
                }
            }
        }
        if (!found.isEmpty()) {
            return found;
        }
        try {
            Constructor<?> constructor = cls.getDeclaredConstructor();
            constructor.setAccessible(true);
            found.add(constructor.newInstance());
        } catch (NoSuchMethodException e) {
            // Reported by the caller.
        }
        return found;
    }

    private static String describeRoute(Class<?> cls, Object instance) throws Exception {
        Object method = call(instance, "getHttpMethod");
        Object url = call(instance, "getTargetRestEndpointURL");
        Set<String> versions = new LinkedHashSet<>();
        Object supported = call(instance, "getSupportedAPIVersions");
        if (supported instanceof Collection) {
            for (Object version : (Collection<?>) supported) {
                versions.add(String.valueOf(call(version, "getURLVersionPrefix")));
            }
        }
        // HttpMethodWrapper is an enum (GET, POST...).
        String methodName = method instanceof Enum ? ((Enum<?>) method).name() : String.valueOf(method);
        return methodName + "\t" + url + "\t" + cls.getName() + "\t" + String.join(",", versions);
    }

    private static Object call(Object target, String name) throws Exception {
        Method method = target.getClass().getMethod(name);
        // Public interface methods of package-private or nested classes need this.
        method.setAccessible(true);
        return method.invoke(target);
    }

    private static String describe(Throwable e) {
        Throwable cause = e;
        while (cause instanceof java.lang.reflect.InvocationTargetException
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause.toString();
    }
}
