package brm.imports.onnx;

import brm.BrmException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The langchain4j embedding-model jars (trained ONNX sentence encoders, for {@link OnnxImporter#importJar}) in the
 * local Maven repository: -Dmaven.repo.local, else settings.xml's localRepository (~/.m2/settings.xml), else
 * ~/.m2/repository. The versions are java/pom.xml's (its test dependencies and copy-encoder-jars); a test keeps them in
 * step.
 */
public final class MavenJars {
    /** One model jar: dev.langchain4j:langchain4j-embeddings-NAME:VERSION. */
    public record Artifact(String name, String version) {
        public static final String GROUP = "dev.langchain4j";

        public String artifactId() {
            return "langchain4j-embeddings-" + name;
        }

        /** groupId:artifactId:version, as mvn dependency:get -Dartifact takes it. */
        public String coordinates() {
            return GROUP + ":" + artifactId() + ":" + version;
        }

        Path in(Path repository) {
            return repository.resolve(GROUP.replace('.', '/')).resolve(artifactId()).resolve(version).resolve(artifactId() + "-" + version + ".jar");
        }
    }

    public static final List<Artifact> KNOWN = List.of(new Artifact("bge-small-en-v15", "0.36.2"),
            new Artifact("e5-small-v2", "0.36.2"), new Artifact("all-minilm-l6-v2", "1.19.0-beta29"));

    private static final Pattern LOCAL_REPOSITORY = Pattern.compile("<localRepository>\\s*([^<]*?)\\s*</localRepository>");

    private MavenJars() {}

    /** The jar of model {@code name} (bge-small-en-v15, or the full artifactId) in the local Maven repository. */
    public static Path find(String name) {
        return find(name, localRepository());
    }

    static Path find(String name, Path repository) {
        Artifact artifact = artifact(name);
        Path jar = artifact.in(repository);
        if (!Files.isRegularFile(jar))
            throw new BrmException(artifact.coordinates() + " is not in the local Maven repository " + repository
                    + "; fetch it with: mvn dependency:get -Dtransitive=false -Dartifact=" + artifact.coordinates());
        return jar;
    }

    static Artifact artifact(String name) {
        return KNOWN.stream().filter(a -> a.name.equals(name) || a.artifactId().equals(name)).findFirst()
                .orElseThrow(() -> new BrmException("unknown model jar '" + name + "' (known: "
                        + KNOWN.stream().map(Artifact::name).collect(Collectors.joining(", ")) + ")"));
    }

    /** Where Maven keeps downloaded artifacts on this machine. */
    static Path localRepository() {
        String property = System.getProperty("maven.repo.local");
        if (property != null && !property.isBlank()) return Path.of(property);
        Path home = Path.of(System.getProperty("user.home"));
        Path settings = home.resolve(".m2/settings.xml");
        if (Files.isRegularFile(settings)) {
            try {
                // settings templates carry an example localRepository inside a comment
                Matcher m = LOCAL_REPOSITORY.matcher(Files.readString(settings).replaceAll("(?s)<!--.*?-->", ""));
                if (m.find() && !m.group(1).isEmpty()) return Path.of(m.group(1).replace("${user.home}", home.toString()));
            } catch (IOException e) {
                throw new BrmException(settings + ": cannot read: " + e.getMessage(), e);
            }
        }
        return home.resolve(".m2/repository");
    }
}
