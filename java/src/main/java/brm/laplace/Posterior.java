package brm.laplace;

import brm.BrmException;
import brm.io.Jsonl;
import brm.io.SafetensorsFile;
import brm.io.SafetensorsWriter;
import brm.lora.LoraAdapter;
import brm.lora.LoraLayer;
import brm.lora.PeftAdapter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Laplace posterior over the LoRA matrices of an adapter (and optionally its head): one
 * {@link LayerPosterior} per matrix, in key order, and how it was fitted. Stored as ADIR/posterior.safetensors,
 * for each matrix under PEFT key K = P.weight (F64):
 *   P.kfac_A [in, in], P.kfac_G [out, out]          the factors as accumulated (full factors)
 *   P.kfac_A_lr [in, k], P.kfac_G_lr [out, k]       U·diag(√λ) of a low-rank sketch instead
 *   P.kfac_A_eigenvalues [k], P.kfac_A_eigenvectors [in, k]   (and the same for G)
 *   P.prior_precision [1]                            per layer, or one "prior_precision" [1] for all
 * and in the header's __metadata__ "brm_laplace": fisher, tokens, pairs, log_lik, log_z, prior,
 * prior_structure, include_head, low_rank and adapter_sha256 (of the adapter's tensor values, so a
 * posterior is refused for an adapter it was not fitted to).
 */
public record Posterior(List<LayerPosterior> layers, ObjectNode info) {
    public static final String FILE = "posterior.safetensors";
    private static final String METADATA = "brm_laplace";

    public Posterior {
        layers = List.copyOf(layers);
        if (layers.isEmpty()) throw new IllegalArgumentException("a posterior needs at least one layer");
    }

    /** SHA-256 of the adapter's LoRA factors and head: keys, shapes and FP32 values in key order. */
    public static String adapterHash(LoraAdapter adapter) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            Map<String, float[]> tensors = new TreeMap<>();
            for (LoraLayer l : adapter.layers().values()) {
                tensors.put(PeftAdapter.loraKey(l.module(), "A"), l.a());
                tensors.put(PeftAdapter.loraKey(l.module(), "B"), l.b());
            }
            if (adapter.scoreWeight() != null) tensors.put(PeftAdapter.HEAD, adapter.scoreWeight());
            for (var e : tensors.entrySet()) {
                md.update(e.getKey().getBytes(StandardCharsets.UTF_8));
                ByteBuffer b = ByteBuffer.allocate(4 * e.getValue().length + 4).putInt(e.getValue().length);
                for (float v : e.getValue()) b.putFloat(v);
                md.update(b.array());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String stem(String key) {
        return key.substring(0, key.length() - ".weight".length());
    }

    /** Writes ADIR/posterior.safetensors atomically. */
    public void write(Path adapterDir) {
        Map<String, SafetensorsWriter.Tensor> t = new LinkedHashMap<>();
        boolean perLayer = info.path("prior_structure").asText().equals("layer");
        for (LayerPosterior l : layers) {
            String p = stem(l.key());
            factor(t, p + ".kfac_A", l.a(), l.rawA());
            factor(t, p + ".kfac_G", l.g(), l.rawG());
            if (perLayer) t.put(p + ".prior_precision", SafetensorsWriter.Tensor.f64(new double[] {l.delta()}, 1));
        }
        if (!perLayer) t.put("prior_precision", SafetensorsWriter.Tensor.f64(new double[] {layers.getFirst().delta()}, 1));
        SafetensorsWriter.write(adapterDir.resolve(FILE), t, Map.of(METADATA, info.toString(), "format", "pt"));
    }

    private static void factor(Map<String, SafetensorsWriter.Tensor> t, String name, Eigenbasis e, double[] raw) {
        int n = e.dim(), k = e.rank();
        if (raw != null) {
            t.put(name, SafetensorsWriter.Tensor.f64(raw, n, n));
        } else {
            double[] us = new double[n * k];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < k; j++) us[i * k + j] = e.vectors()[i * k + j] * Math.sqrt(e.values()[j]);
            t.put(name + "_lr", SafetensorsWriter.Tensor.f64(us, n, k));
        }
        t.put(name + "_eigenvalues", SafetensorsWriter.Tensor.f64(e.values(), k));
        t.put(name + "_eigenvectors", SafetensorsWriter.Tensor.f64(e.vectors(), n, k));
    }

    /** Whether ADIR has a posterior file. */
    public static boolean exists(Path adapterDir) {
        return Files.isRegularFile(adapterDir.resolve(FILE));
    }

    /**
     * Reads ADIR/posterior.safetensors for the adapter loaded from ADIR: every LoRA matrix of the
     * adapter must have its factors, of its shapes, and the stored adapter hash must match.
     */
    public static Posterior read(Path adapterDir, LoraAdapter adapter) {
        Path file = adapterDir.resolve(FILE);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            String meta = f.metadata().get(METADATA);
            if (meta == null) throw new BrmException(file + ": not a brm Laplace posterior (no " + METADATA + " metadata)");
            ObjectNode info;
            try {
                info = (ObjectNode) Jsonl.JSON.readTree(meta);
            } catch (IOException | ClassCastException e) {
                throw new BrmException(file + ": its " + METADATA + " metadata is not a JSON object");
            }
            String hash = adapterHash(adapter);
            if (!hash.equals(info.path("adapter_sha256").asText()))
                throw new BrmException(file + ": was fitted to other adapter weights (hash " + info.path("adapter_sha256").asText()
                        + ", the adapter in " + adapterDir + " has " + hash + "); run brm laplace again");
            Map<String, int[]> shapes = new TreeMap<>();
            for (LoraLayer l : adapter.layers().values()) {
                shapes.put(PeftAdapter.loraKey(l.module(), "A"), new int[] {l.r(), l.in()});
                shapes.put(PeftAdapter.loraKey(l.module(), "B"), new int[] {l.out(), l.r()});
            }
            if (info.path("include_head").asBoolean() && adapter.scoreWeight() != null)
                shapes.put(PeftAdapter.HEAD, new int[] {1, adapter.scoreWeight().length});
            boolean perLayer = info.path("prior_structure").asText().equals("layer");
            double scalar = perLayer ? 0 : delta(f, "prior_precision", file);
            List<LayerPosterior> layers = new ArrayList<>();
            for (var e : shapes.entrySet()) {
                String p = stem(e.getKey());
                int out = e.getValue()[0], in = e.getValue()[1];
                layers.add(new LayerPosterior(e.getKey(), out, in, eigen(f, p + ".kfac_G", out, file), eigen(f, p + ".kfac_A", in, file),
                        raw(f, p + ".kfac_G", out), raw(f, p + ".kfac_A", in), perLayer ? delta(f, p + ".prior_precision", file) : scalar));
            }
            return new Posterior(layers, info);
        }
    }

    private static double delta(SafetensorsFile f, String name, Path file) {
        if (!f.contains(name)) throw new BrmException(file + ": has no " + name);
        double d = f.doubles(name, 1)[0];
        if (!(d > 0) || Double.isInfinite(d)) throw new BrmException(file + ": " + name + " is " + d + "; a prior precision must be positive and finite");
        return d;
    }

    private static Eigenbasis eigen(SafetensorsFile f, String name, int n, Path file) {
        if (!f.contains(name + "_eigenvalues"))
            throw new BrmException(file + ": has no " + name + "_eigenvalues: the posterior does not match the adapter's LoRA layers");
        var info = f.info(name + "_eigenvalues");
        if (info.shape().length != 1) throw new BrmException(file + ": " + name + "_eigenvalues is not a vector");
        int k = (int) info.shape()[0];
        if (k < 1 || k > n) throw new BrmException(file + ": " + name + "_eigenvalues has " + k + " values for a factor of size " + n);
        return new Eigenbasis(n, f.doubles(name + "_eigenvalues", k), f.doubles(name + "_eigenvectors", n, k));
    }

    private static double[] raw(SafetensorsFile f, String name, int n) {
        return f.contains(name) ? f.doubles(name, n, n) : null;
    }

    /** The layer of a PEFT key, or null. */
    public LayerPosterior layer(String key) {
        for (LayerPosterior l : layers) if (l.key().equals(key)) return l;
        return null;
    }

    public boolean includesHead() {
        return info.path("include_head").asBoolean();
    }

    JsonNode get(String field) {
        return info.get(field);
    }
}
