"""Assignment 3 (a3_lstm): references for the LSTM cell and layer, and the catalogues of mistakes.

``REFERENCES`` are the fast, correct helpers swapped in by ``uses=``; ``CATALOGUES`` the graded functions' references
written with mutation sites (:mod:`seqcourse.kernel.mutations`), for the diagnosis engine
(:mod:`seqcourse.kernel.diagnose`).
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from .._pristine import _t, bias_or_zero, seal  # noqa: E402
from ..catalogue import Catalogue  # noqa: E402
from ..expect import unpack  # noqa: E402
from ..training import summary, watch  # noqa: E402
from .bug import Bug  # noqa: E402


def _ref_lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """(h', c') = nn.LSTMCell's update (gates stacked i, f, g, o); x (N, H_in) or (H_in,)."""
    h, c = state
    single = _t.dim(x) == 1
    if single:
        x, h, c = _t.unsqueeze(x, 0), _t.unsqueeze(h, 0), _t.unsqueeze(c, 0)
    h_new, c_new = _t.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    if single:
        h_new, c_new = _t.squeeze(h_new, 0), _t.squeeze(c_new, 0)
    return h_new, c_new


def _ref_lstm_layer(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (L, N, H_in), state (h0, c0) each (N, H) or None -> (output (L, N, H), (h_n, c_n))."""
    hidden = _t.size(w_hh, 1)
    if state is None:
        zeros = _t.zeros(_t.size(x, 1), hidden, dtype=x.dtype, device=x.device)
        state = (zeros, zeros)
    h0, c0 = state
    weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
    out, h_n, c_n = _t.vf_lstm(x, (_t.unsqueeze(h0, 0), _t.unsqueeze(c0, 0)), weights, b_ih is not None, 1, 0.0,
                               False, False, False)
    return out, (_t.squeeze(h_n, 0), _t.squeeze(c_n, 0))


def _cell(m, x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """lstm_cell with mutation sites (gates stacked i, f, g, o in the rows)."""
    h, c = m.swap("the state (h, c)", *state)
    gates = _t.add(m.term("x_t W_ih^T", _t.matmul(x, m.transpose("W_ih", _t.transpose(w_ih, 0, 1)))),
                   m.term("h_(t-1) W_hh^T", _t.matmul(h, m.transpose("W_hh", _t.transpose(w_hh, 0, 1)))))  # (N, 4H)
    gates = _t.add(_t.add(gates, bias_or_zero(m.term("b_ih", b_ih))), bias_or_zero(m.term("b_hh", b_hh)))
    i, f, g, o = m.chunk("the gates", gates, 4, -1, names="ifgo")  # each (N, H)
    i, f = m.apply("the input gate", "sigmoid", i), m.apply("the forget gate", "sigmoid", f)
    g, o = m.apply("the candidate", "tanh", g), m.apply("the output gate", "sigmoid", o)
    c_new = _t.add(m.gate("the forget gate's product f_t * C_(t-1)", f, c),
                   m.gate("the input gate's product i_t * C~_t", i, g))  # (N, H)
    used = c if m.option("the cell state in h_t", "C_t", ("C_(t-1)",)) == "C_(t-1)" else c_new
    h_new = m.gate("the output gate's product o_t * tanh(C_t)", o, m.apply("the tanh of the cell state", "tanh", used))
    return m.swap("the result (h_t, c_t)", h_new, c_new)


_GATES = {"the input gate": ("sigmoid", "values in 0..1: how much of the candidate to store"),
          "the forget gate": ("sigmoid", "values in 0..1: how much of C_(t-1) to keep"),
          "the output gate": ("sigmoid", "values in 0..1: how much of tanh(C_t) to output"),
          "the candidate": ("tanh", "values in -1..1")}
LSTM_CELL = Catalogue(
    "lstm_cell", _cell, cells=("a3_lstm_cell_values", "a3_lstm_cell_unbatched"),
    about={"the state (h, c)": "the state (h, c)", "x_t W_ih^T": "the input term x_t W_ih^T",
           "h_(t-1) W_hh^T": "the recurrent term h_(t-1) W_hh^T", "W_ih": "W_ih", "W_hh": "W_hh",
           "b_ih": "the bias b_ih", "b_hh": "the bias b_hh", "the gates": "the gate pre-activations",
           **{gate: gate for gate in _GATES}, "the cell state in h_t": "h_t",
           "the forget gate's product f_t * C_(t-1)": "the forget gate f_t in C_t = f_t * C_(t-1) + i_t * C~_t",
           "the input gate's product i_t * C~_t": "the input gate i_t in C_t = f_t * C_(t-1) + i_t * C~_t",
           "the output gate's product o_t * tanh(C_t)": "the output gate o_t in h_t = o_t * tanh(C_t)",
           "the tanh of the cell state": "h_t = o_t * tanh(C_t)", "the result (h_t, c_t)": "the result"},
    say={"the gates:as *": "gate order: torch.nn stacks the LSTM gates as i, f, g, o (input, forget, cell candidate, "
                           "output) in the rows of W_ih, W_hh and the biases; you read them as {order}",
         "the gates:*": "gates.chunk(4, dim=-1): the four gates are stacked along the last dimension of the "
                        "pre-activations (N, 4H)",
         **{f"{gate}:{other}": f"{gate} uses {other}: it is a {fn} ({why})" for gate, (fn, why) in _GATES.items()
            for other in ("sigmoid", "tanh", "relu", "gelu") if other != fn},
         **{f"{gate}:identity": f"{gate} has no {fn}: it is {fn}(W x_t + U h_(t-1) + b) ({why})"
            for gate, (fn, why) in _GATES.items()},
         "the candidate:sigmoid": "the candidate C~_t uses tanh (values in -1..1), not a sigmoid",
         "the tanh of the cell state:identity": "h_t = o_t * tanh(C_t): the tanh on the cell state is missing",
         "the input gate's product i_t * C~_t:missing": "C_t = f_t * C_(t-1) + i_t * C~_t: the input gate i_t must "
                                                        "scale the candidate",
         "the forget gate's product f_t * C_(t-1):missing": "C_t = f_t * C_(t-1) + i_t * C~_t: the forget gate f_t "
                                                            "must scale the old cell state",
         "the output gate's product o_t * tanh(C_t):missing": "h_t = o_t * tanh(C_t): the output gate o_t must "
                                                              "scale tanh(C_t)",
         "the cell state in h_t:C_(t-1)": "h_t = o_t * tanh(C_t) uses the new cell state C_t, not the old C_(t-1)",
         "the result (h_t, c_t):swapped": "you return (c_t, h_t); return (h_t, c_t) like nn.LSTMCell",
         "the state (h, c):swapped": "state is (h, c) in this order, like nn.LSTMCell's hx = (h_0, c_0); you read it "
                                     "the other way round",
         "b_hh:missing": "you forgot the bias b_hh (nn.LSTMCell adds both b_ih and b_hh to the gate "
                         "pre-activations)",
         "b_ih:missing": "you forgot the bias b_ih (nn.LSTMCell adds both b_ih and b_hh to the gate "
                         "pre-activations)",
         "W_ih:transposed": "W_ih is transposed: torch.nn computes x_t @ W_ih^T (W_ih is stored as (4H, H_in))",
         "W_hh:transposed": "W_hh is transposed: torch.nn computes h_(t-1) @ W_hh^T (W_hh is stored as (4H, H))",
         "h_(t-1) W_hh^T:missing": "the previous hidden state h_(t-1) is ignored: the gates need the "
                                   "h_(t-1) W_hh^T term",
         "x_t W_ih^T:missing": "the input x_t is ignored: the gates need the x_t W_ih^T term"})


def _layer(m, x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """lstm_layer with mutation sites (the cell itself is the correct one: uses=["lstm_cell"])."""
    zeros = _t.zeros(_t.size(x, 1), _t.size(w_hh, 1), dtype=x.dtype)  # (N, H)
    h0, c0 = state if state is not None else (zeros, zeros)
    h0, c0 = m.swap("the initial state (h0, c0)", h0, c0)
    if m.option("the initial state", "state", ("zeros",)) == "zeros":
        h0, c0 = zeros, zeros
    h, c, outputs = h0, c0, []
    emit = m.option("output[t]", "h_t", ("c_t",))
    for t in m.loop("the loop over the time steps", _t.size(x, 0)):
        h_new, c_new = _ref_lstm_cell(m.at("the input of step t", x, t), (h, c), w_ih, w_hh, b_ih, b_hh)
        outputs.append(h_new if emit == "h_t" else c_new)
        h, c = m.carry("the hidden state h_t", h_new, h0), m.carry("the cell state C_t", c_new, c0)
    h_n, c_n = m.swap("(h_n, c_n)", h_new, c_new)
    return m.stack("output", outputs, 0), (h_n, c_n)


def _observe_layer(fn, *args, **kwargs):
    """lstm_layer's result flattened to (output, h_n, c_n)."""
    return tuple(unpack("lstm_layer's result", fn(*args, **kwargs), ("output", ("h_n", "c_n"))))


LSTM_LAYER = Catalogue(
    "lstm_layer", _layer, cells=("a3_lstm_layer_values",),
    about={"the initial state (h0, c0)": "h0 and c0", "the initial state": "the initial state", "output[t]": "output",
           "the loop over the time steps": "the loop over the time steps", "the input of step t": "the input x_t",
           "the hidden state h_t": "the hidden state h_t", "the cell state C_t": "the cell state C_t",
           "(h_n, c_n)": "h_n and c_n", "output": "output (L, N, H)"},
    say={"the cell state C_t:not carried": "the cell state C_t is not carried from step to step (the highway!): "
                                           "feed each step's c_t into the next",
         "the hidden state h_t:not carried": "the hidden state h_t is not carried from step to step: feed each step's "
                                             "h_t into the next",
         "(h_n, c_n):swapped": "return (output, (h_n, c_n)): you swapped h_n and c_n",
         "the initial state:zeros": "the initial state (h0, c0) is ignored: start from the state that is passed in",
         "the initial state (h0, c0):swapped": "state is (h0, c0) in this order, like nn.LSTM's (h_0, c_0); you used "
                                               "them the other way round",
         "output[t]:c_t": "output[t] is the hidden state h_t (what nn.LSTM outputs), not the cell state c_t",
         "the input of step t:first": "every step reads the first input x[0]: step t reads its own input x[t]",
         "the input of step t:previous": "step t reads the input of the step before (x[t-1]): step t reads x[t]",
         "the input of step t:next": "step t reads the input of the step after (x[t+1]): step t reads x[t]",
         "the input of step t:last": "every step reads the last input x[L-1]: step t reads its own input x[t]",
         "output:*": "output is stacked along the wrong dimension: (L, N, H), time first (torch.stack(outputs))"},
    observe=_observe_layer)


def _long_range_forward(m, model, x):
    """FirstTokenLSTM.forward with mutation sites (lstm_layer is the correct one)."""
    output, (h_n, c_n) = _ref_lstm_layer(_t.embedding(x, model.embedding.weight), None, model.weight_ih,
                                         model.weight_hh, model.bias_ih, model.bias_hh)  # (L, N, H), (N, H)
    read = m.option("the state classified", "h_n", ("output[0]", "c_n", "the mean of the outputs"))
    last = {"output[0]": output[0], "c_n": c_n, "the mean of the outputs": _t.mean(output, 0)}.get(read, h_n)
    logits = _t.linear(last, model.fc.weight, model.fc.bias)  # (N, C)
    if m.option("the result", "the logits", ("softmax probabilities",)) != "the logits":
        logits = _t.softmax(logits, -1)
    return logits


LONG_RANGE = Catalogue(
    "FirstTokenLSTM.forward", _long_range_forward, cells=("a3_long_range_model",),
    about={"the state classified": "the state that is classified", "the result": "forward"},
    say={"the result:softmax probabilities": "forward returns the logits (the output of fc): F.cross_entropy applies "
                                             "the softmax itself",
         "the state classified:output[0]": "many-to-one: classify from the last hidden state h_n (the state after "
                                           "the whole sequence), not from the first output",
         "the state classified:c_n": "classify from the hidden state h_n, not from the cell state c_n",
         "the state classified:the mean of the outputs": "many-to-one: classify from the last hidden state h_n, not "
                                                         "from the mean of all outputs"})


def _train(m, model, x, y, steps=200, lr=0.02, batch_size=64):
    """train_long_range with mutation sites."""
    rate = lr if m.option("learning rate", "lr", ("Adam's default 0.001",)) == "lr" else 0.001
    optimizer = (_t.Adam if m.option("optimizer", "Adam", ("SGD",)) == "Adam" else _t.SGD)(model.parameters(),
                                                                                             lr=rate)
    n = _t.size(x, 1)
    sampling = m.option("the mini-batch", "a new random one at every step",
                        ("drawn once, before the loop", "the first batch_size sequences at every step"))
    fixed = _t.randint(0, n, (batch_size,)) if sampling == "drawn once, before the loop" else _t.arange(batch_size)
    size = m.offset("the mini-batch size", batch_size)
    order = m.option("update order", "zero_grad, backward, step", ("zero_grad, step, backward",))
    losses = []
    for _ in m.loop("the loop over the steps", steps):
        batch = _t.randint(0, n, (size,)) if sampling == "a new random one at every step" else fixed
        logits = model(x[:, batch])
        if m.option("loss", "cross-entropy of the logits", ("cross-entropy of the softmax probabilities",)) \
                != "cross-entropy of the logits":
            logits = _t.softmax(logits, -1)
        loss = _t.cross_entropy(logits, y[batch], reduction="mean" if m.option(
            "loss reduction", "mean over the batch", ("sum over the batch",)) == "mean over the batch" else "sum")
        if m.step("optimizer.zero_grad()"):
            optimizer.zero_grad()
        if order == "zero_grad, step, backward":
            optimizer.step()
            loss.backward()
        else:
            loss.backward()
            if m.step("optimizer.step()"):
                optimizer.step()
        losses.append(float(loss))
    return losses


def _observe_training(fn, model, x, y, steps=200, lr=0.02, batch_size=64):
    """What train_long_range did (see seqcourse.kernel.training); batches are the columns of x it trained on."""
    losses, log = watch(fn, model, x, y, steps=steps, lr=lr, batch_size=batch_size)
    columns = {tuple(col): j for j, col in enumerate(_t.tolist(_t.transpose(x, 0, 1)))}  # column of x -> index

    def labels_of(inputs):
        if len(inputs) != 1 or not isinstance(inputs[0], _t.Tensor) or _t.dim(inputs[0]) != 2:
            return (), None
        seen = tuple(columns.get(tuple(col), -1) for col in _t.tolist(_t.transpose(inputs[0], 0, 1)))
        if min(seen, default=-1) < 0:
            return seen, None
        return seen, y[_t.tensor(seen, dtype=_t.long)]

    return summary(log, losses, labels_of)


TRAINING = Catalogue(
    "train_long_range", _train, observe=_observe_training, cells=("a3_long_range_training",),
    about={"learning rate": "the learning rate", "optimizer": "the optimizer", "the mini-batch": "the mini-batch",
           "the mini-batch size": "the mini-batch size", "the loop over the steps": "the loop over the steps",
           "loss": "the loss", "loss reduction": "the loss",
           "optimizer.zero_grad()": "optimizer.zero_grad() before loss.backward()", "update order": "the update",
           "optimizer.step()": "optimizer.step()"},
    say={"learning rate:Adam's default 0.001": "the learning rate lr that is passed in is ignored: "
                                               "torch.optim.Adam(model.parameters(), lr=lr)",
         "optimizer:SGD": "the exercise trains with Adam (torch.optim.Adam), not SGD",
         "the mini-batch:drawn once, before the loop": "the mini-batch is drawn once, before the loop, so every step "
                                                       "trains on the same batch_size sequences: draw a new random "
                                                       "mini-batch at every step",
         "the mini-batch:the first batch_size sequences at every step": "every step trains on the same first "
                                                                        "batch_size sequences: draw a new random "
                                                                        "mini-batch at every step",
         "the mini-batch size:*": "each mini-batch must hold batch_size sequences",
         "update order:zero_grad, step, backward": "optimizer.step() runs before loss.backward(): each update uses the "
                                                   "previous step's gradients (compute the loss, loss.backward(), "
                                                   "then optimizer.step())",
         "optimizer.step():missing": "optimizer.step() is missing: nothing updates the weights (loss.backward() only "
                                     "computes the gradients)",
         "optimizer.zero_grad():missing": "optimizer.zero_grad() is missing: the gradients of all earlier steps add "
                                          "up in .grad, so every step follows their sum; clear them before each "
                                          "loss.backward()",
         "loss:cross-entropy of the softmax probabilities": "F.cross_entropy takes the logits (it applies the "
                                                            "log-softmax itself), not softmax probabilities",
         "loss reduction:sum over the batch": "the loss is summed over the mini-batch: cross-entropy averages over "
                                              "the batch (F.cross_entropy's default reduction='mean')",
         "the loop over the steps:*": "train_long_range must return the list of losses, one per step (steps "
                                      "updates)"},
    skip=frozenset({"the loop over the steps:backwards"}))


CATALOGUES = {c.name: c for c in (LSTM_CELL, LSTM_LAYER, LONG_RANGE, TRAINING)}


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {"lstm_cell": _ref_lstm_cell, "lstm_layer": _ref_lstm_layer}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-gate-order": Bug(
        "a3_lstm", "a3_lstm_cell",
        old="i, f, g, o = gates.chunk(4, dim=-1)", new="i, f, o, g = gates.chunk(4, dim=-1)",
        breaks=("a3_lstm_cell_values",), says="gate order: torch.nn stacks the LSTM gates as i, f, g, o"),
    "bug-cell-state-not-carried": Bug(
        "a3_lstm", "a3_lstm_layer",
        old="h, c = lstm_cell(x[t], (h, c), w_ih, w_hh, b_ih, b_hh)",
        new="h, c = lstm_cell(x[t], (h, state[1]), w_ih, w_hh, b_ih, b_hh)",
        breaks=("a3_lstm_layer_values",), says="the cell state C_t is not carried"),
    "bug-classify-first-output": Bug(
        "a3_lstm", "a3_long_range",
        old="return self.fc(h_n)", new="return self.fc(output[0])",
        breaks=("a3_long_range_model",), says="classify from the last hidden state h_n"),
}

__all__ = ["CATALOGUES", "DEMO_BUGS", "REFERENCES"]


seal(__name__)
