"""Assignment 1 (a1_rnn): references for the RNN cell, layer and embedding, and the catalogues of mistakes.

``REFERENCES`` are the fast, correct helpers swapped in by ``uses=``; ``CATALOGUES`` the graded functions' references
written with mutation sites (:mod:`seqcourse.kernel.mutations`), whose mutations the diagnosis engine
(:mod:`seqcourse.kernel.diagnose`) tries when a student's result is wrong.
"""

from __future__ import annotations

from .._pristine import private_builtins

private_builtins(globals())  # this module keeps the builtins it was imported with

from .._pristine import _t, bias_or_zero, seal  # noqa: E402
from ..catalogue import Catalogue  # noqa: E402
from ..training import summary, watch  # noqa: E402
from .bug import Bug  # noqa: E402


def _ref_rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); x (N, H_in) or (H_in,), h (N, H) or (H,)."""
    pre_x = _t.add(_t.linear(x, w_ih), bias_or_zero(b_ih))
    return _t.tanh(_t.add(pre_x, _t.add(_t.linear(h, w_hh), bias_or_zero(b_hh))))


def _ref_rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (L, N, H_in), h0 (N, H) or None -> (output (L, N, H), h_n (N, H))."""
    h = h0 if h0 is not None else _t.zeros(_t.size(x, 1), _t.size(w_hh, 0), dtype=x.dtype, device=x.device)
    if (b_ih is None) == (b_hh is None):  # the fused kernel behind nn.RNN
        weights = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
        out, h_n = _t.vf_rnn_tanh(x, _t.unsqueeze(h, 0), weights, b_ih is not None, 1, 0.0, False, False, False)
        return out, _t.squeeze(h_n, 0)
    outs = []
    for t in range(_t.size(x, 0)):
        h = _ref_rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return _t.stack(outs), h


def _ref_embedding(indices, weight):
    return _t.embedding(indices, weight)


# --------------------------------------------------------------------------------------------------- catalogues
def _cell(m, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """rnn_cell with mutation sites: h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh)."""
    inp = m.term("x_t W_ih^T", _t.matmul(x, m.transpose("W_ih", _t.transpose(w_ih, 0, 1))))  # (N, H)
    rec = m.term("h_(t-1) W_hh^T", _t.matmul(h, m.transpose("W_hh", _t.transpose(w_hh, 0, 1))))  # (N, H)
    b_ih, b_hh = bias_or_zero(m.term("b_ih", b_ih)), bias_or_zero(m.term("b_hh", b_hh))
    if m.option("tanh placement", "one tanh of the sum", ("a tanh per term",)) == "a tanh per term":
        return _t.add(m.apply("activation", "tanh", _t.add(inp, b_ih)),
                      m.apply("activation", "tanh", _t.add(rec, b_hh)))
    return m.apply("activation", "tanh", _t.add(_t.add(inp, b_ih), _t.add(rec, b_hh)))


RNN_CELL = Catalogue(
    "rnn_cell", _cell, cells=("a1_rnn_cell_values", "a1_rnn_cell_unbatched"),
    about={"x_t W_ih^T": "the input term x_t W_ih^T", "h_(t-1) W_hh^T": "the recurrent term h_(t-1) W_hh^T",
           "W_ih": "W_ih", "W_hh": "W_hh", "b_ih": "the bias b_ih", "b_hh": "the bias b_hh",
           "activation": "the state update h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh)",
           "tanh placement": "the tanh"},
    say={"W_ih:transposed": "W_ih is transposed: torch.nn computes x_t @ W_ih^T (W_ih is stored as (H, H_in))",
         "W_hh:transposed": "W_hh is transposed: torch.nn computes h_(t-1) @ W_hh^T (W_hh is stored as (H, H) = (to, "
                            "from))",
         "b_hh:missing": "you forgot the bias b_hh (nn.RNNCell has two biases, b_ih and b_hh, both added before the "
                         "tanh)",
         "b_ih:missing": "you forgot the bias b_ih (nn.RNNCell has two biases, b_ih and b_hh, both added before the "
                         "tanh)",
         "activation:identity": "the tanh is missing: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)",
         "activation:relu": "you used ReLU; the lecture's RNN (and nn.RNNCell's default) uses tanh",
         "activation:sigmoid": "you used a sigmoid; the RNN update uses tanh (values in -1..1, centred on 0)",
         "activation:gelu": "you used GELU; the RNN update uses tanh",
         "h_(t-1) W_hh^T:missing": "the previous hidden state h_(t-1) is ignored: the recurrence needs the "
                                   "W_hh h_(t-1) term",
         "x_t W_ih^T:missing": "the input x_t is ignored: the update needs the W_ih x_t term",
         "tanh placement:a tanh per term": "the tanh is applied to each term separately; add everything first, then "
                                           "take one tanh"})


def _layer(m, x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """rnn_layer with mutation sites (the cell itself is the correct one: uses=["rnn_cell"])."""
    zeros = _t.zeros(_t.size(x, 1), _t.size(w_hh, 0), dtype=x.dtype)  # (N, H)
    start = h0 if h0 is not None else zeros
    if m.option("initial state", "h0", ("zeros",)) == "zeros":
        start = zeros
    h, outputs = start, []
    after = m.option("output[t]", "the new state h_t", ("the state h_(t-1) before the step",)) == "the new state h_t"
    for t in m.loop("the loop over the time steps", _t.size(x, 0)):
        new = _ref_rnn_cell(m.at("the input of step t", x, t), h, w_ih, w_hh, b_ih, b_hh)  # (N, H)
        outputs.append(new if after else h)
        h = m.carry("the hidden state", new, start)
    output = m.stack("output", outputs, 0)  # (L, N, H)
    if m.option("output order", "output[t] belongs to x[t]", ("reversed",)) == "reversed":
        output = _t.flip(output, (0,))
    return output, m.at("h_n", [*outputs[:-1], h], -1) if after else h  # h_n is the carried state h


RNN_LAYER = Catalogue(
    "rnn_layer", _layer, cells=("a1_rnn_layer_values",),
    about={"initial state": "the initial state", "output[t]": "output[t]",
           "the loop over the time steps": "the loop over the time steps", "the input of step t": "the input x_t",
           "the hidden state": "the hidden state", "output": "output (L, N, H)", "output order": "the output",
           "h_n": "h_n"},
    say={"initial state:zeros": "h0 is ignored: the first step must start from the h0 that is passed in (zeros only "
                                "when h0 is None)",
         "the hidden state:not carried": "the hidden state is not carried from step to step: feed each step's h_t "
                                         "into the next step",
         "output[t]:the state h_(t-1) before the step": "output[t] must be the new state h_t (after step t), not the "
                                                        "state h_(t-1) the step started from",
         "output order:reversed": "the output is in reversed time order: output[t] belongs to input x[t]",
         "the input of step t:first": "every step reads the first input x[0]: step t reads its own input x[t]",
         "the input of step t:previous": "step t reads the input of the step before (x[t-1]): step t reads x[t]",
         "the input of step t:next": "step t reads the input of the step after (x[t+1]): step t reads x[t]",
         "the input of step t:last": "every step reads the last input x[L-1]: step t reads its own input x[t]",
         "h_n:first": "h_n is the last state, after the whole sequence (output[-1]), not the first one",
         "h_n:previous": "h_n is the state after the last step (output[-1]), not the one before it",
         "output:*": "output is stacked along the wrong dimension: (L, N, H), time first (torch.stack(outputs))"})


def _embedding(m, indices, weight):
    """embedding with mutation sites: row i of the weight matrix for index i."""
    return m.transpose("the weight matrix", weight)[m.offset("the index", indices)]  # (*, E)


EMBEDDING = Catalogue(
    "embedding", _embedding, cells=("a1_embedding_values",),
    about={"the weight matrix": "the weight matrix", "the index": "the index"},
    say={"the weight matrix:transposed": "the vectors are the rows of the weight matrix (V, E): index i gives "
                                         "weight[i], not column i",
         "the index:*": "off by one: index i gives row i of the weight matrix (indices count from 0)"})


def _classifier_forward(m, model, text, lengths):
    """SentimentRNN.forward with mutation sites (embedding and rnn_layer are the correct ones)."""
    embeds = _ref_embedding(text, model.embedding_weight)  # (L, N, E)
    output, _ = _ref_rnn_layer(embeds, None, model.weight_ih, model.weight_hh, model.bias_ih, model.bias_hh)
    read = m.option("the state classified", "the output after each sentence's last word",
                    ("the output at the last time step", "the output at the first time step",
                     "the mean of the outputs over all time steps"))
    if read == "the output at the last time step":
        last = output[-1]
    elif read == "the output at the first time step":
        last = output[0]
    elif read == "the mean of the outputs over all time steps":
        last = _t.mean(output, 0)
    else:
        last = output[m.offset("the position of the last word", lengths - 1), _t.arange(_t.size(text, 1))]  # (N, H)
    logits = _t.linear(last, model.fc.weight, model.fc.bias)  # (N, C)
    if m.option("the result", "the logits", ("softmax probabilities",)) != "the logits":
        logits = _t.softmax(logits, -1)
    return logits


CLASSIFIER = Catalogue(
    "SentimentRNN.forward", _classifier_forward, cells=("a1_classifier_logits",),
    about={"the state classified": "the state that is classified",
           "the position of the last word": "the position of a sentence's last word", "the result": "forward"},
    say={"the state classified:the output at the last time step":
         "you read the output at the last time step (output[-1]) for every sentence; for a padded batch that is a "
         "padding step for the shorter sentences: use output[length - 1] of each sentence",
         "the state classified:the output at the first time step":
         "you read the first output (output[0]); many-to-one classification uses the state after the last word",
         "the state classified:the mean of the outputs over all time steps":
         "you average the outputs over all time steps, padding included; many-to-one classification reads the state "
         "after each sentence's last word, output[length - 1]",
         "the result:softmax probabilities": "forward returns the logits (the output of fc): F.cross_entropy applies "
                                             "the softmax itself",
         "the position of the last word:+1": "off by one: the last real word of a sentence of length n is at "
                                              "position n - 1",
         "the position of the last word:-1": "off by one: you read the state before the last word; the last real "
                                              "word of a sentence of length n is at position n - 1"})


def _train(m, model, batches, epochs=8, lr=0.01):
    """train_classifier with mutation sites."""
    rate = lr if m.option("learning rate", "lr", ("Adam's default 0.001",)) == "lr" else 0.001
    optimizer = (_t.Adam if m.option("optimizer", "Adam", ("SGD",)) == "Adam" else _t.SGD)(model.parameters(),
                                                                                             lr=rate)
    order = m.option("update order", "zero_grad, backward, step", ("backward, zero_grad, step", "zero_grad, step, "
                                                                                                  "backward"))
    history = []
    for _ in m.loop("the loop over the epochs", epochs):
        losses = []
        for text, lengths, labels in batches:
            logits = model(text, lengths)
            if m.option("loss", "cross-entropy of the logits", ("cross-entropy of the softmax probabilities",)) \
                    != "cross-entropy of the logits":
                logits = _t.softmax(logits, -1)
            loss = _t.cross_entropy(logits, labels, reduction="mean" if m.option(
                "loss reduction", "mean over the batch", ("sum over the batch",)) == "mean over the batch" else "sum")
            if order == "zero_grad, backward, step":
                if m.step("optimizer.zero_grad()"):
                    optimizer.zero_grad()
                loss.backward()
                if m.step("optimizer.step()"):
                    optimizer.step()
            elif order == "backward, zero_grad, step":
                loss.backward()
                optimizer.zero_grad()
                optimizer.step()
            else:
                optimizer.zero_grad()
                optimizer.step()
                loss.backward()
            losses.append(float(loss))
        epoch = m.option("epoch loss", "the mean over its batches", ("the sum over its batches", "its last batch's"))
        history.append(sum(losses) / len(losses) if epoch == "the mean over its batches"
                       else sum(losses) if epoch == "the sum over its batches" else losses[-1])
    return history


def _observe_training(fn, model, batches, epochs=8, lr=0.01):
    """What train_classifier did (see seqcourse.kernel.training), and the mean loss per epoch it should return."""
    history, log = watch(fn, model, batches, epochs=epochs, lr=lr)

    def labels_of(inputs):
        for j, (text, lengths, labels) in enumerate(batches):
            if len(inputs) == 2 and _t.equal(inputs[0], text) and _t.equal(inputs[1], lengths):
                return j, labels
        return -1, None

    return summary(log, history, labels_of)


TRAINING = Catalogue(
    "train_classifier", _train, observe=_observe_training, cells=("a1_classifier_training",),
    about={"learning rate": "the learning rate", "optimizer": "the optimizer", "update order": "the update",
           "the loop over the epochs": "the loop over the epochs", "loss": "the loss",
           "loss reduction": "the loss", "optimizer.zero_grad()": "optimizer.zero_grad() before loss.backward()",
           "optimizer.step()": "optimizer.step()",
           "epoch loss": "the loss of an epoch"},
    say={"learning rate:Adam's default 0.001": "the learning rate lr that is passed in is ignored: "
                                               "torch.optim.Adam(model.parameters(), lr=lr)",
         "optimizer:SGD": "the exercise trains with Adam (torch.optim.Adam), not SGD",
         "update order:backward, zero_grad, step": "optimizer.zero_grad() runs between loss.backward() and "
                                                   "optimizer.step(), so every step sees zero gradients: clear the "
                                                   "gradients before loss.backward()",
         "update order:zero_grad, step, backward": "optimizer.step() runs before loss.backward(): each update uses the "
                                                   "previous batch's gradients (compute the loss, loss.backward(), "
                                                   "then optimizer.step())",
         "optimizer.zero_grad():missing": "optimizer.zero_grad() is missing: the gradients of all earlier batches add "
                                          "up in .grad, so every step follows their sum; clear them before each "
                                          "loss.backward()",
         "loss:cross-entropy of the softmax probabilities": "F.cross_entropy takes the logits (it applies the "
                                                            "log-softmax itself), not softmax probabilities",
         "optimizer.step():missing": "optimizer.step() is missing: nothing updates the weights (loss.backward() only "
                                     "computes the gradients)",
         "loss reduction:sum over the batch": "the loss is summed over the batch: cross-entropy averages over the "
                                              "batch (F.cross_entropy's default reduction='mean')",
         "epoch loss:the sum over its batches": "an epoch's loss is the mean of its batches' losses, not their sum",
         "epoch loss:its last batch's": "an epoch's loss is the mean over all its batches, not the last batch's loss",
         "the loop over the epochs:*": "train_classifier must return a list with the mean loss of each epoch: one "
                                       "number per epoch, for epochs passes over the batches"},
    skip=frozenset({"the loop over the epochs:backwards"}))


CATALOGUES = {c.name: c for c in (RNN_CELL, RNN_LAYER, EMBEDDING, CLASSIFIER, TRAINING)}


#: correct versions of the notebook's helpers, swapped in by ``run_student(..., uses=[...])``
REFERENCES = {"rnn_cell": _ref_rnn_cell, "rnn_layer": _ref_rnn_layer, "embedding": _ref_embedding}

#: the demo class: one realistic mistake per student, and the graded cells it must lose
DEMO_BUGS = {
    "bug-whh-transposed": Bug(
        "a1_rnn", "a1_rnn_cell",
        old="pre = x @ w_ih.T + h @ w_hh.T", new="pre = x @ w_ih.T + h @ w_hh",
        breaks=("a1_rnn_cell_values",), says="W_hh is transposed"),
    "bug-detached-state": Bug(
        "a1_rnn", "a1_rnn_layer",
        old="h = rnn_cell(x[t], h, w_ih, w_hh, b_ih, b_hh)",
        new="h = rnn_cell(x[t], h.detach(), w_ih, w_hh, b_ih, b_hh)",
        breaks=("a1_rnn_layer_gradients",), says="something cuts the graph"),
    "bug-last-step-padding": Bug(
        "a1_rnn", "a1_classifier",
        old="last = output[lengths - 1, torch.arange(text.shape[1])]", new="last = output[-1]",
        breaks=("a1_classifier_logits",), says="that is a padding step"),
}

__all__ = ["CATALOGUES", "DEMO_BUGS", "REFERENCES"]


seal(__name__)
