package brm.imports.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.util.Map;
import java.util.Random;

/** The original runtime, for reference: an ONNX BERT export run by onnxruntime, compared with {@link BertReference}. */
public final class OnnxRuntimeReference implements AutoCloseable {
    /** A batch of token rows [b][n]; padding has id 0 and mask 0. */
    public record Batch(long[][] ids, long[][] types, long[][] mask) {
        /**
         * Random ids in [firstId, vocab) between cls and sep, random token types; row 0 has all n tokens, every later
         * row a random shorter length padded to n.
         */
        static Batch random(Random random, int rows, int n, long cls, long sep, int firstId, int vocab, int typeVocab) {
            long[][] ids = new long[rows][n], types = new long[rows][n], mask = new long[rows][n];
            for (int r = 0; r < rows; r++) {
                int length = r == 0 ? n : 3 + random.nextInt(n - 3);
                for (int t = 0; t < length; t++) {
                    ids[r][t] = t == 0 ? cls : t == length - 1 ? sep : firstId + random.nextInt(vocab - firstId);
                    types[r][t] = random.nextInt(typeVocab);
                    mask[r][t] = 1;
                }
            }
            return new Batch(ids, types, mask);
        }
    }

    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    public OnnxRuntimeReference(byte[] model) throws OrtException {
        session = env.createSession(model, new OrtSession.SessionOptions());
    }

    /** The graph's first output, the last hidden state [b][n][hidden]. */
    public float[][][] lastHiddenState(Batch batch) throws OrtException {
        try (OnnxTensor ids = OnnxTensor.createTensor(env, batch.ids());
             OnnxTensor types = OnnxTensor.createTensor(env, batch.types());
             OnnxTensor mask = OnnxTensor.createTensor(env, batch.mask());
             OrtSession.Result result = session.run(Map.of("input_ids", ids, "token_type_ids", types, "attention_mask", mask))) {
            return (float[][][]) result.get(0).getValue();
        }
    }

    /** Max |onnxruntime - reference| over every row, token (padding included) and feature of the batch. */
    double maxAbsError(BertReference reference, Batch batch) throws OrtException {
        float[][][] expected = lastHiddenState(batch);
        double max = 0;
        for (int r = 0; r < expected.length; r++)
            max = Math.max(max, maxAbsError(expected[r], reference.lastHiddenState(batch.ids()[r], batch.types()[r], batch.mask()[r])));
        return max;
    }

    /** Max |expected - actual| over [n][hidden]. */
    static double maxAbsError(float[][] expected, double[][] actual) {
        double max = 0;
        for (int t = 0; t < actual.length; t++)
            for (int i = 0; i < actual[t].length; i++) max = Math.max(max, Math.abs(expected[t][i] - actual[t][i]));
        return max;
    }

    @Override
    public void close() throws OrtException {
        session.close();
    }
}
