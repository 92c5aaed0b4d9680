package brm.reward;

import brm.backbone.Backbone;
import brm.backbone.Linear;
import brm.backbone.LoraContext;
import brm.backbone.ModelConfig;
import brm.backend.Backend;
import brm.backend.Backends;
import brm.backend.Packing;
import brm.backend.Tensor;
import brm.head.RewardHead;
import brm.lora.LoraAdapter;
import brm.lora.PeftAdapter;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * A reward model whose LoRA updates and head can be differentiated: the model of training (and of
 * the Laplace approximation's Jacobians). For one packed batch,
 *   forward:  r [seqs] = head(backbone(ids))                    activations kept
 *   backward: for dr [seqs], every parameter's gradient += Σ_s dr_s · ∂r_s/∂θ
 * The parameters are the adapter's lora_A [r, in] and lora_B [out, r] of every targeted linear and
 * the head score [1, hidden]; base weights stay frozen. Not thread-safe.
 */
public final class DifferentiableRewardModel implements AutoCloseable {
    /**
     * One trained tensor and its gradient, both [rows, cols] on the backend.
     *
     * @param key the tensor's name in a PEFT adapter_model.safetensors
     */
    public record Parameter(String key, Tensor value, Tensor gradient) {
        public int size() {
            return value.rows() * value.cols();
        }
    }

    private final Path dir;
    private final ModelConfig config;
    private final Backend backend;
    private final Backbone backbone;
    private final RewardHead head;
    private final List<Parameter> parameters;
    private final LoraContext context;
    private Packing last;

    private DifferentiableRewardModel(Path dir, ModelConfig config, Backend backend, Backbone backbone, RewardHead head, List<Linear> trained,
                                      LoraContext context) {
        this.context = context;
        this.dir = dir;
        this.config = config;
        this.backend = backend;
        this.backbone = backbone;
        this.head = head;
        List<Parameter> ps = new ArrayList<>();
        for (Linear l : trained) {
            ps.add(new Parameter(PeftAdapter.loraKey(l.module().path(), "A"), l.lora().a(), l.gradient().a()));
            ps.add(new Parameter(PeftAdapter.loraKey(l.module().path(), "B"), l.lora().b(), l.gradient().b()));
        }
        ps.add(new Parameter(PeftAdapter.HEAD, head.score(), head.gradient()));
        this.parameters = List.copyOf(ps);
    }

    /**
     * Loads dir with the adapter's LoRA updates (and head, else initHead's fresh one, else dir's) on the
     * selected backend ({@link Backends}), LoRA dropout p while {@link #dropout} has a seed.
     */
    public static DifferentiableRewardModel open(Path dir, LoraAdapter adapter, int threads, OptionalLong initHead, float dropout) {
        return open(dir, adapter, Backends.create(threads), initHead, dropout);
    }

    /** As {@link #open(Path, LoraAdapter, int, OptionalLong, float)}, on the given backend (the model owns it). */
    public static DifferentiableRewardModel open(Path dir, LoraAdapter adapter, Backend backend, OptionalLong initHead, float dropout) {
        LoraContext context = new LoraContext(backend, dropout);
        return Loader.open(dir, adapter, backend, context, (config, ckpt, linears, be, backbone) -> new DifferentiableRewardModel(dir, config, be,
                backbone, RewardHead.load(config, ckpt, be, adapter, initHead, true), linears.trained(), context));
    }

    /** LoRA dropout masks of the following forward/backward come from seed; null turns dropout off (evaluation). */
    public void dropout(Long seed) {
        context.seed(seed);
    }

    /**
     * The probe that sees every trained LoRA layer's inputs and output gradients in the following
     * backward passes (which then leave the LoRA gradients alone); null for none.
     */
    public void probe(LoraContext.Probe probe) {
        context.probe(probe);
    }

    public ModelConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    /** The trained tensors: lora_A, lora_B of each targeted linear in model order, then the head. */
    public List<Parameter> parameters() {
        return parameters;
    }

    /** rewards [n] of one batch of sequences (checked like {@link RewardModel#score}); keeps what backward needs. */
    public float[] forward(List<int[]> sequences) {
        return backend.download(forwardTensor(sequences));
    }

    /** {@link #forward} with the rewards [n, 1] left on the backend at its precision (a buffer valid until the next call). */
    public Tensor forwardTensor(List<int[]> sequences) {
        for (int i = 0; i < sequences.size(); i++) Inputs.check(config, dir, i, sequences.get(i));
        last = Packing.of(sequences);
        return head.forward(last, backbone.forward(last, Inputs.concat(sequences)));
    }

    /** For dRewards [n] of the last forward's sequences: every parameter gradient += Σ_s dr_s · ∂r_s/∂θ. */
    public void backward(float[] dRewards) {
        if (last == null) throw new IllegalStateException("backward before forward");
        if (dRewards.length != last.seqs()) throw new IllegalArgumentException(dRewards.length + " reward gradients for " + last.seqs() + " sequences");
        backbone.backward(last, head.backward(last, dRewards));
    }

    /** The packed batch of the last forward. */
    public Packing lastBatch() {
        return last;
    }

    /** The last forward's pooled hidden states [seqs, hidden]: ∂r_s/∂score for each sequence. */
    public Tensor lastPooled() {
        return head.pooled(last.seqs());
    }

    /** Sets every parameter gradient to 0. */
    public void zeroGradients() {
        for (Parameter p : parameters) backend.zero(p.gradient());
    }

    @Override
    public void close() {
        backend.close();
    }
}
