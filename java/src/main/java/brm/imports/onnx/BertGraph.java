package brm.imports.onnx;

import brm.BrmException;
import brm.imports.onnx.OnnxModel.Node;
import brm.imports.onnx.OnnxModel.Tensor;
import brm.io.SafetensorsWriter;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Recovers Hugging Face BertModel weights and config from the graph of an ONNX export of a BERT encoder, by
 * following the data flow, not the names (exporters name many weights only {@code onnx::MatMul_N}).
 *
 * The graph must compute post-LN BERT on input_ids, token_type_ids and attention_mask, for n tokens:
 * <pre>
 *   x = LN(word[input_ids] + position[0..n) + type[token_type_ids])                          [n, H]
 *   per layer, with heads of width d = H / heads:
 *     q, k, v = x Wq + bq, x Wk + bk, x Wv + bv                                              [n, H]
 *     a = concat_h softmax(q_h k_h^T / sqrt(d) + mask) v_h                                   [n, H]
 *     x = LN(x + a Wo + bo)
 *     x = LN(x + gelu(x Wi + bi) Wout + bout)        Wi [H, I], Wout [I, H]
 *   LN(x) = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta      (fused LayerNormalization or its decomposition)
 *   gelu(x) = x/2 (1 + erf(x / sqrt 2))                                    (the Gelu op or its decomposition)
 * </pre>
 * ONNX MatMul weights are [in, out]; HF Linear weights are [out, in], so each is transposed. Every float
 * initializer must find its role, and every operator must be one of the few above, or the import is refused.
 */
final class BertGraph {
    record Config(int hidden, int layers, int heads, int intermediate, int vocab, int maxPositions, int typeVocab,
                  double layerNormEps) {}

    record Result(Config config, Map<String, SafetensorsWriter.Tensor> tensors) {}

    /** The operators a BERT encoder export is made of; shape bookkeeping (Shape, Gather on shapes, ...) included. */
    private static final Set<String> OPERATORS = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "ReduceMean",
            "LayerNormalization", "MatMul", "Gather", "Slice", "Shape", "Unsqueeze", "Concat", "Reshape", "Transpose",
            "Softmax", "Erf", "Gelu", "Cast", "Constant");

    private record Linear(Tensor weight, Tensor bias, String output) {
        int in() {
            return (int) weight.dims()[0];
        }

        int out() {
            return (int) weight.dims()[1];
        }
    }

    private record Norm(Tensor gamma, Tensor beta, float eps, String output) {}

    private record Layer(String output, int heads, int intermediate) {}

    /** Where a q/k/v projection meets attention: the MatMul, its input slot, the head split, the scalar factor. */
    private record Route(Node matmul, int slot, int heads, double factor) {}

    private final String file;
    private final OnnxModel.Graph graph;
    private final Map<String, Node> producers = new HashMap<>();
    private final Map<String, List<Node>> consumers = new HashMap<>();
    private final Map<String, SafetensorsWriter.Tensor> tensors = new LinkedHashMap<>();
    private final Set<String> claimed = new HashSet<>();
    private final List<Float> epsilons = new ArrayList<>();
    private int hidden;

    private BertGraph(String file, OnnxModel.Graph graph) {
        this.file = file;
        this.graph = graph;
        for (Node n : graph.nodes()) {
            for (String out : n.outputs()) producers.put(out, n);
            for (String in : n.inputs()) consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
        }
    }

    /** The BertModel in {@code graph}; {@code file} names the model in errors. */
    static Result recover(String file, OnnxModel.Graph graph) {
        try {
            return new BertGraph(file, graph).recover();
        } catch (IllegalArgumentException e) { // a tensor of the wrong type where the graph needs numbers of another
            throw new BrmException(file + ": " + e.getMessage());
        }
    }

    private Result recover() {
        for (Node n : graph.nodes()) {
            if (!(n.domain().isEmpty() || n.domain().equals("ai.onnx")) || !OPERATORS.contains(n.opType()))
                throw new BrmException(file + ": unsupported operator " + (n.domain().isEmpty() ? "" : n.domain() + ".")
                        + n.opType() + " in node " + n.name() + " (brm imports plain BERT encoders)");
        }
        Node word = embeddingGather(graphInput("input_ids"));
        Node type = embeddingGather(graphInput("token_type_ids"));
        Tensor wordTable = graph.initializers().get(word.input(0)), typeTable = graph.initializers().get(type.input(0));
        hidden = (int) wordTable.dims()[1];

        String sum = word.output();
        Set<String> addends = new HashSet<>();
        for (List<Node> next = dataConsumers(sum); next.size() == 1 && next.getFirst().opType().equals("Add"); next = dataConsumers(sum)) {
            addends.add(other(next.getFirst(), sum));
            sum = next.getFirst().output();
        }
        if (addends.size() != 2 || !addends.remove(type.output()))
            throw new BrmException(file + ": the word embeddings of node " + word.name() + " are not summed with the token type and position embeddings");
        Node position = producers.get(addends.iterator().next());
        Tensor positionTable = position == null || !position.opType().equals("Gather") ? null : floatInitializer(position.input(0), 2);
        if (positionTable == null || positionTable.dims()[1] != hidden)
            throw new BrmException(file + ": no position embedding Gather beside the word embeddings of node " + word.name());
        checkPositions(position);
        put("bert.embeddings.word_embeddings.weight", wordTable);
        put("bert.embeddings.position_embeddings.weight", positionTable);
        put("bert.embeddings.token_type_embeddings.weight", typeTable);
        String x = putNorm("bert.embeddings.LayerNorm", layerNorm(sum));

        int layers = 0, heads = 0, intermediate = 0;
        for (List<Node> projections = matmuls(x); !projections.isEmpty(); projections = matmuls(x)) {
            Layer layer = layer("bert.encoder.layer." + layers, x, projections);
            if (layers > 0 && (layer.heads != heads || layer.intermediate != intermediate))
                throw new BrmException(file + ": layer " + layers + " has " + layer.heads + " heads and intermediate size "
                        + layer.intermediate + ", layer 0 has " + heads + " and " + intermediate);
            x = layer.output;
            heads = layer.heads;
            intermediate = layer.intermediate;
            layers++;
        }
        if (layers == 0) throw new BrmException(file + ": no encoder layer follows the embeddings");
        if (!graph.outputs().contains(x))
            throw new BrmException(file + ": the graph's outputs " + graph.outputs() + " are not the last encoder layer's output " + x);
        for (Tensor t : graph.initializers().values())
            if (t.dataType() == OnnxModel.FLOAT && !claimed.contains(t.name()))
                throw new BrmException(file + ": initializer " + t.name() + " " + Arrays.toString(t.dims()) + " has no role in a BERT encoder");
        if (epsilons.stream().distinct().count() != 1)
            throw new BrmException(file + ": the LayerNorms use different epsilons " + epsilons.stream().distinct().toList());
        double eps = Double.parseDouble(Float.toString(epsilons.getFirst()));
        Config config = new Config(hidden, layers, heads, intermediate, (int) wordTable.dims()[0], (int) positionTable.dims()[0],
                (int) typeTable.dims()[0], eps);
        return new Result(config, tensors);
    }

    /** One encoder layer from its input x: its weights go to tensors under prefix. */
    private Layer layer(String prefix, String x, List<Node> projections) {
        if (projections.size() != 3)
            throw new BrmException(file + ": " + projections.size() + " MatMuls read " + x + " where the query, key and value projections should be");
        Linear query = null, key = null, value = null;
        Route queryRoute = null, keyRoute = null, valueRoute = null;
        List<Linear> linears = new ArrayList<>();
        List<Route> routes = new ArrayList<>();
        for (Node m : projections) {
            Linear p = linear(m, hidden, hidden);
            linears.add(p);
            routes.add(route(p.output()));
        }
        for (int i = 0; i < 3; i++) {
            if (routes.get(i).slot == 0) {
                query = linears.get(i);
                queryRoute = routes.get(i);
            }
        }
        if (queryRoute == null) throw new BrmException(file + ": no projection of " + x + " is the left side of the attention scores");
        for (int i = 0; i < 3; i++) {
            Route r = routes.get(i);
            if (r.slot == 1 && r.matmul == queryRoute.matmul) {
                key = linears.get(i);
                keyRoute = r;
            } else if (r.slot == 1) {
                value = linears.get(i);
                valueRoute = r;
            }
        }
        if (key == null || value == null)
            throw new BrmException(file + ": node " + queryRoute.matmul.name() + ": cannot tell the key and value projections of " + x + " apart");
        int heads = queryRoute.heads;
        if (keyRoute.heads != heads || valueRoute.heads != heads)
            throw new BrmException(file + ": node " + queryRoute.matmul.name() + ": query, key and value are split into different head counts");

        Node context = softmaxTo(queryRoute.matmul, queryRoute.factor * keyRoute.factor, hidden / heads);
        if (context != valueRoute.matmul || valueRoute.factor != 1)
            throw new BrmException(file + ": node " + context.name() + ": the attention probabilities do not multiply the value projection");
        Linear attentionOut = linear(mergeHeads(context), hidden, hidden);
        String x1 = putNorm(prefix + ".attention.output.LayerNorm", layerNorm(residual(attentionOut, x)));

        List<Node> up = matmuls(x1);
        if (up.size() != 1) throw new BrmException(file + ": " + up.size() + " MatMuls read " + x1 + " where the intermediate dense should be");
        Linear intermediate = linear(up.getFirst(), hidden, -1);
        List<Node> down = dataConsumers(gelu(intermediate.output()));
        if (down.size() != 1 || !down.getFirst().opType().equals("MatMul"))
            throw new BrmException(file + ": the GELU after node " + up.getFirst().name() + " does not feed one MatMul");
        Linear output = linear(down.getFirst(), intermediate.out(), hidden);
        String x2 = putNorm(prefix + ".output.LayerNorm", layerNorm(residual(output, x1)));

        putLinear(prefix + ".attention.self.query", query);
        putLinear(prefix + ".attention.self.key", key);
        putLinear(prefix + ".attention.self.value", value);
        putLinear(prefix + ".attention.output.dense", attentionOut);
        putLinear(prefix + ".intermediate.dense", intermediate);
        putLinear(prefix + ".output.dense", output);
        return new Layer(x2, heads, intermediate.out());
    }

    /**
     * Follows a projection through the head split (Reshape to [.., .., heads, d], Transposes, scalar scaling) to the
     * attention MatMul it feeds: the query arrives as [b, heads, n, d] on the left, the key as [b, heads, d, n] on the
     * right, the value as [b, heads, n, d] on the right.
     */
    private Route route(String projection) {
        String value = projection;
        double factor = 1;
        int heads = 0;
        int[] layout = null; // axis of the [b, n, heads, d] split that each current axis holds
        while (true) {
            Node c = onlyDataConsumer(value, "the attention head split");
            switch (c.opType()) {
                case "Reshape" -> {
                    if (layout != null) throw fail(c, "a second Reshape in the attention head split");
                    Long[] target = shapeVector(c, 4);
                    long h = target[2] == null ? 0 : target[2], d = target[3] == null ? 0 : target[3];
                    if (h == -1 && d > 0) h = hidden / d;
                    if (h <= 0 || d != hidden / h && d != -1 || hidden % h != 0)
                        throw fail(c, "reshape to " + Arrays.toString(target) + " is not a split of " + hidden + " into heads");
                    heads = (int) h;
                    layout = new int[]{0, 1, 2, 3};
                }
                case "Transpose" -> {
                    if (layout == null) throw fail(c, "a Transpose before the attention head split");
                    layout = permute(c, layout);
                }
                case "Mul", "Div" -> factor = scale(c, value, factor);
                case "MatMul" -> {
                    if (layout == null) throw fail(c, "attention MatMul before any head split");
                    int slot = c.inputs().indexOf(value);
                    int[] expected = slot == 0 || !isScores(c) ? new int[]{0, 2, 1, 3} : new int[]{0, 2, 3, 1};
                    if (!Arrays.equals(layout, expected))
                        throw fail(c, "operand " + value + " arrives in layout " + Arrays.toString(layout) + ", expected " + Arrays.toString(expected));
                    return new Route(c, slot, heads, factor);
                }
                default -> throw fail(c, "unexpected in the attention head split");
            }
            value = c.output();
        }
    }

    /** Whether a MatMul produces attention scores: its output goes on to the Softmax (through scaling and the mask). */
    private boolean isScores(Node matmul) {
        String v = matmul.output();
        for (List<Node> next = dataConsumers(v); next.size() == 1; next = dataConsumers(v)) {
            Node c = next.getFirst();
            if (c.opType().equals("Softmax")) return true;
            if (!Set.of("Mul", "Div", "Add").contains(c.opType())) return false;
            v = c.output();
        }
        return false;
    }

    /**
     * From the score MatMul through scaling, the mask Add and the Softmax to the MatMul that applies the attention
     * probabilities; the scalings on the way and before (projectionFactor) must make up 1/sqrt(d).
     */
    private Node softmaxTo(Node scores, double projectionFactor, int headDim) {
        String v = scores.output();
        double factor = projectionFactor;
        boolean masked = false;
        while (true) {
            Node c = onlyDataConsumer(v, "the attention scores");
            switch (c.opType()) {
                case "Mul", "Div" -> factor = scale(c, v, factor);
                case "Add" -> {
                    if (masked || constant(other(c, v)) != null) throw fail(c, "unexpected Add on the attention scores");
                    masked = true;
                }
                case "Softmax" -> {
                    Long axis = attributeInt(c, "axis");
                    if (axis != null && axis != -1 && axis != 3) throw fail(c, "softmax over axis " + axis + ", not the keys");
                    if (Math.abs(factor * Math.sqrt(headDim) - 1) > 1e-5)
                        throw fail(c, "attention scores are scaled by " + factor + ", not 1/sqrt(" + headDim + ")");
                    Node context = onlyDataConsumer(c.output(), "the attention probabilities");
                    if (!context.opType().equals("MatMul") || !context.input(0).equals(c.output()))
                        throw fail(context, "the attention probabilities should be the left side of a MatMul");
                    return context;
                }
                default -> throw fail(c, "unexpected on the attention scores");
            }
            v = c.output();
        }
    }

    /** From the per-head context [b, heads, n, d] back to [b, n, H]: a Transpose, a Reshape, then the output dense MatMul. */
    private Node mergeHeads(Node context) {
        String v = context.output();
        int[] layout = {0, 1, 2, 3};
        boolean merged = false;
        while (true) {
            Node c = onlyDataConsumer(v, "the attention context");
            switch (c.opType()) {
                case "Transpose" -> layout = permute(c, layout);
                case "Reshape" -> {
                    Long[] target = shapeVector(c, 3);
                    if (merged || !Arrays.equals(layout, new int[]{0, 2, 1, 3}) || target[2] == null || target[2] != hidden && target[2] != -1)
                        throw fail(c, "does not merge the heads back into " + hidden + " features");
                    merged = true;
                }
                case "MatMul" -> {
                    if (!merged) throw fail(c, "the attention output dense reads unmerged heads");
                    return c;
                }
                default -> throw fail(c, "unexpected after the attention context");
            }
            v = c.output();
        }
    }

    /** The exact GELU on v: the Gelu op, or x/2 (1 + erf(x / sqrt 2)) written out; returns its output. */
    private String gelu(String x) {
        Node first = onlyDataConsumerOr(x);
        if (first != null && first.opType().equals("Gelu")) {
            OnnxModel.Attribute approximate = first.attributes().get("approximate");
            if (approximate != null && !new String(approximate.s(), StandardCharsets.UTF_8).equals("none"))
                throw fail(first, "tanh-approximated GELU; BERT uses the exact one");
            return first.output();
        }
        Node scaled = null, half = null;
        for (Node c : dataConsumers(x)) {
            if (c.opType().equals("Div") || c.opType().equals("Mul")) {
                double k = scalarOrNaN(other(c, x));
                if (c.opType().equals("Div") && Math.abs(k - Math.sqrt(2)) < 1e-6 || c.opType().equals("Mul") && Math.abs(k - Math.sqrt(0.5)) < 1e-6)
                    scaled = c;
                else if (c.opType().equals("Mul") && k == 0.5) half = c;
            }
        }
        if (scaled == null) throw new BrmException(file + ": the intermediate dense output " + x + " does not go through an exact (erf) GELU");
        Node erf = onlyDataConsumer(scaled.output(), "the GELU");
        Node onePlus = onlyDataConsumer(erf.output(), "the GELU");
        if (!erf.opType().equals("Erf") || !onePlus.opType().equals("Add") || scalarOrNaN(other(onePlus, erf.output())) != 1)
            throw fail(onePlus, "not the exact GELU x/2 (1 + erf(x / sqrt 2))");
        Node product = onlyDataConsumer(onePlus.output(), "the GELU");
        String factor = product.opType().equals("Mul") ? other(product, onePlus.output()) : "";
        if (factor.equals(x) && half == null) {
            Node last = onlyDataConsumer(product.output(), "the GELU");
            if (last.opType().equals("Mul") && scalarOrNaN(other(last, product.output())) == 0.5) return last.output();
        } else if (half != null && factor.equals(half.output())) {
            return product.output();
        }
        throw fail(product, "not the exact GELU x/2 (1 + erf(x / sqrt 2))");
    }

    /** x + dense(..): the Add after a Linear whose other side is the residual x; returns the sum. */
    private String residual(Linear dense, String x) {
        Node add = onlyDataConsumer(dense.output(), "the residual connection");
        if (!add.opType().equals("Add") || !other(add, dense.output()).equals(x))
            throw fail(add, "expected the residual Add of " + x);
        return add.output();
    }

    /** MatMul(a, W [in, out]) then Add(b [out]); out < 0 accepts any width. */
    private Linear linear(Node matmul, int in, int out) {
        Tensor weight = floatInitializer(matmul.input(1), 2);
        if (!matmul.opType().equals("MatMul") || weight == null)
            throw fail(matmul, "expected a MatMul by a weight initializer");
        if (weight.dims()[0] != in || out >= 0 && weight.dims()[1] != out)
            throw fail(matmul, "weight " + matmul.input(1) + " is " + Arrays.toString(weight.dims()) + ", expected [" + in + ", " + (out < 0 ? "I" : out) + "]");
        Node add = onlyDataConsumer(matmul.output(), "the bias");
        Tensor bias = add.opType().equals("Add") ? floatInitializer(other(add, matmul.output()), 1) : null;
        if (bias == null || bias.dims()[0] != weight.dims()[1])
            throw fail(add, "expected the bias Add of " + matmul.name() + " ([" + weight.dims()[1] + "] initializer)");
        return new Linear(weight, bias, add.output());
    }

    /** The LayerNorm over the last axis that reads x: the fused op or ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add. */
    private Norm layerNorm(String x) {
        List<Node> readers = dataConsumers(x);
        for (Node c : readers) {
            if (!c.opType().equals("LayerNormalization")) continue;
            Long axis = attributeInt(c, "axis");
            if (axis != null && axis != -1 && axis != 2) throw fail(c, "normalizes from axis " + axis + ", not the features");
            OnnxModel.Attribute eps = c.attributes().get("epsilon");
            return norm(c, c.input(1), c.input(2), eps == null ? 1e-5f : eps.f(), c.output());
        }
        Node mean = readers.stream().filter(c -> c.opType().equals("ReduceMean")).findFirst()
                .orElseThrow(() -> new BrmException(file + ": no LayerNorm reads " + x));
        checkLastAxisMean(mean);
        Node sub = readers.stream().filter(c -> c.opType().equals("Sub") && c.input(0).equals(x) && c.input(1).equals(mean.output()))
                .findFirst().orElseThrow(() -> fail(mean, "no x - mean(x) follows"));
        String centered = sub.output();
        Node pow = dataConsumers(centered).stream().filter(c -> c.opType().equals("Pow")).findFirst()
                .orElseThrow(() -> fail(sub, "no square of x - mean(x) follows"));
        if (scalarOrNaN(pow.input(1)) != 2) throw fail(pow, "expected the square of x - mean(x)");
        Node variance = onlyDataConsumer(pow.output(), "the LayerNorm");
        checkLastAxisMean(variance);
        Node plusEps = onlyDataConsumer(variance.output(), "the LayerNorm");
        double eps = plusEps.opType().equals("Add") ? scalarOrNaN(other(plusEps, variance.output())) : Double.NaN;
        if (!(eps >= 0)) throw fail(plusEps, "expected variance + epsilon");
        Node sqrt = onlyDataConsumer(plusEps.output(), "the LayerNorm");
        Node div = onlyDataConsumer(sqrt.output(), "the LayerNorm");
        if (!sqrt.opType().equals("Sqrt") || !div.opType().equals("Div") || !div.input(0).equals(centered))
            throw fail(div, "expected (x - mean) / sqrt(variance + epsilon)");
        Node scale = onlyDataConsumer(div.output(), "the LayerNorm");
        Node shift = scale.opType().equals("Mul") ? onlyDataConsumer(scale.output(), "the LayerNorm") : scale;
        if (!scale.opType().equals("Mul") || !shift.opType().equals("Add")) throw fail(shift, "expected the LayerNorm's * gamma + beta");
        return norm(shift, other(scale, div.output()), other(shift, scale.output()), (float) eps, shift.output());
    }

    private Norm norm(Node node, String gammaName, String betaName, float eps, String output) {
        Tensor gamma = floatInitializer(gammaName, 1), beta = floatInitializer(betaName, 1);
        if (gamma == null || beta == null || gamma.dims()[0] != hidden || beta.dims()[0] != hidden)
            throw fail(node, "LayerNorm weight and bias should be [" + hidden + "] initializers");
        return new Norm(gamma, beta, eps, output);
    }

    private void checkLastAxisMean(Node mean) {
        Long keep = attributeInt(mean, "keepdims");
        OnnxModel.Attribute axes = mean.attributes().get("axes");
        long[] axis = axes != null ? axes.ints() : constant(mean.input(1)) != null ? constant(mean.input(1)).longs() : new long[0];
        if (!mean.opType().equals("ReduceMean") || keep != null && keep != 1 || axis.length != 1 || axis[0] != -1 && axis[0] != 2)
            throw fail(mean, "expected a mean over the last axis");
    }

    /** The position ids must be 0..n-1: a Slice (from 0, step 1, along the last axis) of a constant 0..P-1 range. */
    private void checkPositions(Node positionGather) {
        Node slice = producers.get(positionGather.input(1));
        Tensor range = slice == null || !slice.opType().equals("Slice") ? null : constant(slice.input(0));
        if (range == null) throw fail(positionGather, "position ids are not a slice of a constant range");
        long[] ids = range.longs(), axes = constantOr(slice.input(3), new long[]{-1});
        boolean ok = Arrays.equals(constantOr(slice.input(1), null), new long[]{0})
                && axes != null && axes.length == 1 && (axes[0] == -1 || axes[0] == range.dims().length - 1)
                && Arrays.equals(constantOr(slice.input(4), new long[]{1}), new long[]{1});
        for (int i = 0; i < ids.length; i++) ok &= ids[i] == i;
        if (!ok) throw fail(positionGather, "position ids are not the range 0..n-1");
        claimed.add(slice.input(0));
    }

    private Node embeddingGather(String ids) {
        for (Node c : dataConsumers(ids))
            if (c.opType().equals("Gather") && c.input(1).equals(ids) && floatInitializer(c.input(0), 2) != null) return c;
        throw new BrmException(file + ": no embedding table Gather reads graph input " + ids);
    }

    private String graphInput(String name) {
        if (!graph.inputs().contains(name))
            throw new BrmException(file + ": the graph has no input " + name + " (inputs: " + graph.inputs() + ")");
        return name;
    }

    private List<Node> matmuls(String x) {
        return dataConsumers(x).stream().filter(c -> c.opType().equals("MatMul")).toList();
    }

    /** The nodes that read v's values; Shape nodes only read its dimensions. */
    private List<Node> dataConsumers(String v) {
        return consumers.getOrDefault(v, List.of()).stream().filter(c -> !c.opType().equals("Shape")).toList();
    }

    private Node onlyDataConsumerOr(String v) {
        List<Node> readers = dataConsumers(v);
        return readers.size() == 1 ? readers.getFirst() : null;
    }

    private Node onlyDataConsumer(String v, String where) {
        Node c = onlyDataConsumerOr(v);
        if (c == null)
            throw new BrmException(file + ": value " + v + " in " + where + " is read by " + dataConsumers(v).size() + " nodes, expected one");
        return c;
    }

    private String other(Node binary, String v) {
        if (binary.inputs().size() != 2 || !binary.inputs().contains(v)) throw fail(binary, "expected a binary operation on " + v);
        return binary.input(0).equals(v) ? binary.input(1) : binary.input(0);
    }

    /** factor after a Mul or Div of value by a scalar constant. */
    private double scale(Node c, String value, double factor) {
        double k = scalarOrNaN(other(c, value));
        if (Double.isNaN(k) || c.opType().equals("Div") && !c.input(0).equals(value)) throw fail(c, "expected scaling by a constant");
        return c.opType().equals("Mul") ? factor * k : factor / k;
    }

    /** The axis labels after a Transpose: out[i] = in[perm[i]]. */
    private static int[] permute(Node transpose, int[] layout) {
        OnnxModel.Attribute perm = transpose.attributes().get("perm");
        int[] out = new int[layout.length];
        for (int i = 0; i < out.length; i++) out[i] = perm == null ? layout[out.length - 1 - i] : layout[(int) perm.ints()[i]];
        return out;
    }

    /** A Reshape's target shape: a constant, or a Concat of constants and dynamic dimensions (null). */
    private Long[] shapeVector(Node reshape, int rank) {
        String v = reshape.input(1);
        List<Long> shape = new ArrayList<>();
        Tensor c = constant(v);
        Node concat = producers.get(v);
        if (c != null) {
            for (long d : c.longs()) shape.add(d);
        } else if (concat != null && concat.opType().equals("Concat")) {
            for (String part : concat.inputs()) {
                Tensor p = constant(part);
                Node dynamic = producers.get(part);
                if (p != null) for (long d : p.longs()) shape.add(d);
                else if (dynamic != null && dynamic.opType().equals("Unsqueeze")) shape.add(null);
                else throw fail(reshape, "cannot read its target shape");
            }
        } else {
            throw fail(reshape, "cannot read its target shape");
        }
        if (shape.size() != rank) throw fail(reshape, "reshapes to rank " + shape.size() + ", expected " + rank);
        return shape.toArray(Long[]::new);
    }

    /** An initializer or Constant node value; null for computed values. */
    private Tensor constant(String v) {
        Tensor t = graph.initializers().get(v);
        if (t != null) return t;
        Node p = producers.get(v);
        if (p == null || !p.opType().equals("Constant")) return null;
        OnnxModel.Attribute value = p.attributes().get("value");
        if (value == null || value.t() == null) throw fail(p, "only Constant nodes with a tensor 'value' are supported");
        return value.t();
    }

    /** The integer values of an optional constant input; absent gives {@code absent}, a computed value null. */
    private long[] constantOr(String v, long[] absent) {
        if (v.isEmpty()) return absent;
        Tensor t = constant(v);
        return t == null ? null : t.longs();
    }

    private double scalarOrNaN(String v) {
        Tensor t = constant(v);
        if (t == null || t.size() != 1) return Double.NaN;
        return t.dataType() == OnnxModel.FLOAT ? t.floats()[0] : t.longs()[0];
    }

    private Tensor floatInitializer(String name, int rank) {
        Tensor t = graph.initializers().get(name);
        return t != null && t.dataType() == OnnxModel.FLOAT && t.dims().length == rank ? t : null;
    }

    private static Long attributeInt(Node n, String name) {
        OnnxModel.Attribute a = n.attributes().get(name);
        return a == null ? null : a.i();
    }

    private void put(String name, Tensor t) {
        claimed.add(t.name());
        tensors.put(name, new SafetensorsWriter.Tensor(t.floats(), t.dims()));
    }

    private String putNorm(String prefix, Norm n) {
        put(prefix + ".weight", n.gamma);
        put(prefix + ".bias", n.beta);
        epsilons.add(n.eps);
        return n.output;
    }

    /** HF Linear layout: W [in, out] becomes [out, in]. */
    private void putLinear(String prefix, Linear l) {
        float[] w = l.weight.floats(), t = new float[w.length];
        int in = l.in(), out = l.out();
        for (int i = 0; i < in; i++)
            for (int o = 0; o < out; o++) t[o * in + i] = w[i * out + o];
        claimed.add(l.weight.name());
        tensors.put(prefix + ".weight", new SafetensorsWriter.Tensor(t, out, in));
        put(prefix + ".bias", l.bias);
    }

    private BrmException fail(Node n, String message) {
        return new BrmException(file + ": node " + n.name() + " (" + n.opType() + "): " + message);
    }
}
