import java.security.Principal;
import java.util.HashMap;
import java.util.Map;
import javax.security.auth.Subject;
import javax.security.auth.kerberos.KerberosTicket;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import javax.security.auth.login.LoginContext;

/**
 * Logs in from a keytab through JAAS, as Flink's JAAS configuration offers it to Kafka's
 * client (the KafkaClient context with Krb5LoginModule, keytab, no ticket cache), and prints
 * the principal and the ticket-granting ticket it got. The JVM finds krb5.conf through
 * -Djava.security.krb5.conf, as the rendered pods pass it.
 *
 * Usage: java KeytabLogin.java KEYTAB PRINCIPAL
 */
public class KeytabLogin {
    public static void main(String[] args) throws Exception {
        Map<String, String> options = new HashMap<>();
        options.put("useKeyTab", "true");
        options.put("keyTab", args[0]);
        options.put("principal", args[1]);
        options.put("storeKey", "true");
        options.put("doNotPrompt", "true");
        options.put("useTicketCache", "false");
        options.put("refreshKrb5Config", "true");
        AppConfigurationEntry entry =
                new AppConfigurationEntry(
                        "com.sun.security.auth.module.Krb5LoginModule",
                        AppConfigurationEntry.LoginModuleControlFlag.REQUIRED,
                        options);
        Configuration jaas =
                new Configuration() {
                    @Override
                    public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
                        return "KafkaClient".equals(name)
                                ? new AppConfigurationEntry[] {entry}
                                : null;
                    }
                };
        LoginContext login = new LoginContext("KafkaClient", new Subject(), null, jaas);
        login.login();
        for (Principal p : login.getSubject().getPrincipals()) {
            System.out.println("principal " + p.getName());
        }
        for (KerberosTicket t :
                login.getSubject().getPrivateCredentials(KerberosTicket.class)) {
            System.out.println("ticket " + t.getServer().getName());
        }
    }
}
