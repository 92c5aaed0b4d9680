package brm.laplace;

import brm.backbone.Workspace;
import brm.backend.Backend;
import brm.backend.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The Laplace hot paths for any backend: each batch's Vᵀ·V one FP32 GEMM on the backend, downloaded and added in
 * float64 on the host; eigendecompositions by {@link SymmetricEigen}; coefficients from the downloaded projection.
 */
final class HostLaplaceKernels implements LaplaceKernels {
    private final Backend backend;
    private final Workspace ws;

    HostLaplaceKernels(Backend backend) {
        this.backend = backend;
        this.ws = new Workspace(backend);
    }

    @Override
    public FactorSum factorSum(int n) {
        double[] sum = new double[n * n];
        return new FactorSum() {
            @Override
            public void add(Tensor rows, float scale) {
                Tensor product = ws.get("factor" + n, n, n);  // shared by the factors of one size
                backend.matmul(rows, true, rows, false, scale * scale, 0f, product);
                float[] m = backend.download(product);
                for (int i = 0; i < sum.length; i++) sum[i] += m[i];
            }

            @Override
            public double[] sum() {
                return sum;
            }
        };
    }

    @Override
    public List<SymmetricEigen> eigenPsd(List<Symmetric> factors, double tolerance) {
        List<SymmetricEigen> out = new ArrayList<>();
        for (Symmetric f : factors) out.add(SymmetricEigen.ofPsd(f.a(), f.n(), f.name(), tolerance));
        return out;
    }

    @Override
    public double[][] coefficients(Tensor projected, int seqs, int r, Eigenbasis small, int kw, boolean transposed) {
        float[] p = backend.download(projected);
        double[] q = small.vectors();
        int ks = small.rank();
        double[][] out = new double[seqs][];
        for (int s = 0; s < seqs; s++) {
            double[] c = new double[ks * kw];
            for (int k = 0; k < r; k++)
                for (int si = 0; si < ks; si++) {
                    double qk = q[k * ks + si];
                    if (qk == 0) continue;
                    for (int wi = 0; wi < kw; wi++) {
                        double v = qk * p[(s * r + k) * kw + wi];
                        if (transposed) c[wi * ks + si] += v;
                        else c[si * kw + wi] += v;
                    }
                }
            out[s] = c;
        }
        return out;
    }

    @Override
    public VarianceSums varianceSums(int seqs, boolean pairs) {
        return null;
    }
}
