package brm.io;

import brm.BrmException;

/** Element types brm reads from and writes to safetensors; everything is computed in FP32. */
public enum DType {
    F32(4), F16(2), BF16(2), F64(8), I64(8), I32(4);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    static DType parse(String name, String where) {
        try {
            return valueOf(name);
        } catch (IllegalArgumentException e) {
            throw new BrmException(where + ": unsupported dtype " + name + " (brm reads F32, F16, BF16, F64, I64, I32)");
        }
    }
}
