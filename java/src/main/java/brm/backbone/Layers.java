package brm.backbone;

import brm.backend.Backend;

/**
 * The workspaces of a backbone's layers: one shared by all when only scoring (activations are
 * overwritten layer after layer), one per layer when training (each layer's activations survive
 * until backward). {@code grads} holds the transient gradients of backward, shared by all layers.
 */
final class Layers {
    private final Workspace[] workspaces;
    final Workspace grads;
    final boolean training;

    Layers(Backend backend, int count, boolean training) {
        this.training = training;
        this.workspaces = new Workspace[count + 1];
        Workspace shared = new Workspace(backend);
        for (int i = 0; i <= count; i++) workspaces[i] = training ? new Workspace(backend) : shared;
        this.grads = new Workspace(backend);
    }

    /** Layer i's workspace; i = count is the output side (the final norm's input). */
    Workspace of(int i) {
        return workspaces[i];
    }

    /** Refuses backward on a backbone built for scoring. */
    void checkTraining() {
        if (!training) throw new IllegalStateException("backward on a model loaded for scoring; load it with training Linears");
    }
}
