r"""What a spiking network costs: synaptic operations against multiply-adds, firing sparsity, and a spiking network
beside a GRU on the sensor task (C34, C35).

A GRU does the same work at every step whatever the input: three gates, each a matrix-vector product with the input
and one with the hidden state, :math:`3H(H_{in} + H)` multiply-accumulates (MACs) per step. A spiking neuron does
work only when a spike arrives: each spike is added to the potential of every neuron it reaches (its *fan-out*), one
accumulate (AC, no multiply: the spike is 1) per synapse. Event-driven chips (Loihi, TrueNorth, SpiNNaker) spend
energy in proportion to these *synaptic operations*,

.. math::
    \text{SynOps} = \sum_{\text{spikes}} \text{fan-out}, \qquad
    \text{sparsity} = 1 - \frac{\#\text{spikes}}{\#\text{neuron-steps}},

plus one leak-and-compare per neuron and step. :class:`OpCount` adds them up; :func:`gru_ops` and
:func:`spiking_ops` count both networks on the same input; :meth:`OpCount.energy_pj` turns the counts into an energy
estimate with the per-operation figures often quoted for 45 nm CMOS (32-bit float: a MAC ~4.6 pJ, an add ~0.9 pJ;
Horowitz, ISSCC 2014). That estimate leaves out memory traffic, which dominates real chips: read it as the arithmetic
alone.

When the spiking network is fed the analog sensor readings as input *current* (``encoding="current"``), its input
layer is a dense product like the GRU's and is counted as MACs; with delta or rate spike coding the input is events
too. :func:`compare_on_sensor` trains both networks of the same hidden size on :func:`seqlib.data.sensor_activity`
and reports accuracy, firing rate and operations side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_choice, check_floating, check_positive_int, check_rank, check_tensor
from .classifiers import RNNClassifier, accuracy, train_classifier
from .data import sensor_activity
from .spike_coding import delta_encode, rate_encode
from .spiking import SpikingClassifier
from .threads import torch_threads

__all__ = ["OpCount", "gru_ops", "spiking_ops", "firing_rate", "sparsity", "encode_sensor", "compare_on_sensor",
           "ENCODINGS", "E_MAC_PJ", "E_AC_PJ"]

#: Energy of one 32-bit float multiply-accumulate and one add, in pJ (45 nm; Horowitz, ISSCC 2014).
E_MAC_PJ, E_AC_PJ = 4.6, 0.9
#: How :func:`encode_sensor` can present the accelerometer to a spiking network.
ENCODINGS: tuple[str, ...] = ("current", "delta", "rate")


@dataclass(frozen=True)
class OpCount:
    """Operations for one sequence: ``macs`` (multiply-accumulates), ``acs`` (accumulates: synaptic operations of
    spikes) and ``neuron_updates`` (one per neuron and step: leak, compare, reset)."""

    macs: float = 0.0
    acs: float = 0.0
    neuron_updates: float = 0.0

    def energy_pj(self, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ) -> float:
        """Arithmetic energy estimate in pJ: ``macs * e_mac + (acs + neuron_updates) * e_ac``."""
        return self.macs * e_mac + (self.acs + self.neuron_updates) * e_ac

    def __add__(self, other: OpCount) -> OpCount:
        return OpCount(self.macs + other.macs, self.acs + other.acs, self.neuron_updates + other.neuron_updates)


def gru_ops(seq_len: int, input_size: int, hidden_size: int, num_classes: int = 0) -> OpCount:
    r"""A GRU over ``seq_len`` steps, then a linear readout of the last state: :math:`L \cdot 3H(H_{in} + H) + H C`
    MACs (the matrix products; the gates' element-wise work is left out, as it is for the LIF's leak)."""
    L, H_in, H = (check_positive_int(n, v) for n, v in (("seq_len", seq_len), ("input_size", input_size),
                                                         ("hidden_size", hidden_size)))
    return OpCount(macs=float(L * 3 * H * (H_in + H) + H * num_classes))


def _events(name: str, spikes: object, expected: str) -> Tensor:
    s = check_tensor(name, spikes, expected)
    check_rank(name, s, (3,), expected)
    return s != 0  # (L, N, H): an event wherever a spike (ON or OFF) is


def spiking_ops(hidden_spikes: Tensor, input: Tensor, *, input_is_spikes: bool, recurrent: bool = True,
                num_classes: int = 0) -> OpCount:
    r"""The operations of a LIF layer and its leaky readout on one batch, per sequence (averaged over ``N``).

    - input: each input event reaches all ``H`` neurons (ACs); analog input current is a dense product,
      :math:`L H_{in} H` MACs;
    - recurrence: each hidden spike at step :math:`t` reaches all ``H`` neurons at :math:`t + 1` (ACs);
    - readout: each hidden spike reaches the ``C`` outputs (ACs);
    - neuron updates: :math:`L (H + C)`.

    Args:
        hidden_spikes: ``(L, N, H)``, the layer's spikes (e.g. ``SpikingClassifier.last_spikes``).
        input: ``(L, N, H_in)``, the layer's input (spikes or currents).
        input_is_spikes: count the input as events (``True``) or as dense currents (``False``).
        recurrent: whether spikes feed back through ``H x H`` recurrent weights.
        num_classes: ``C``, the readout's outputs (0: no readout).
    """
    s = _events("hidden_spikes", hidden_spikes, "(L, N, H)")
    x = check_tensor("input", input, "(L, N, H_in)")
    check_rank("input", x, (3,), "(L, N, H_in)")
    if x.shape[:2] != s.shape[:2]:
        raise ValueError(f"input (L, N, H_in) and hidden_spikes (L, N, H) must share L and N, but got shapes "
                         f"{tuple(x.shape)} and {tuple(s.shape)}")
    L, N, H = s.shape
    H_in = x.shape[2]
    acs, macs = 0.0, 0.0
    if input_is_spikes:
        acs += float((x != 0).sum()) * H / N
    else:
        macs += float(L * H_in * H)
    if recurrent:
        acs += float(s[:-1].sum()) * H / N  # the last step's spikes have no next step within the window
    acs += float(s.sum()) * num_classes / N
    return OpCount(macs=macs, acs=acs, neuron_updates=float(L * (H + num_classes)))


def firing_rate(spikes: Tensor) -> float:
    """The fraction of neuron-steps with a spike."""
    s = check_tensor("spikes", spikes)
    return float((s != 0).float().mean())


def sparsity(spikes: Tensor) -> float:
    """The fraction of neuron-steps *without* a spike: ``1 - firing_rate``."""
    return 1.0 - firing_rate(spikes)


def encode_sensor(x: Tensor, encoding: str = "current", *, mean: Tensor | None = None, std: Tensor | None = None,
                  threshold: float = 0.1, seed: int = 0) -> Tensor:
    r"""Present accelerometer windows ``(N, L, 3)`` (in g) to a spiking network.

    - ``"current"``: the readings standardised per axis, :math:`(x - \mu) / \sigma` (``mean``, ``std``: ``(3,)``,
      default the batch's own), fed as input current: ``(N, L, 3)``.
    - ``"delta"``: ON and OFF spikes of a tracking delta code with threshold ``threshold`` g, one channel each:
      ``(N, L, 6)``.
    - ``"rate"``: each standardised reading squashed to a probability :math:`\sigma(z)` and rate-coded, one draw
      per step: ``(N, L, 3)``.
    """
    x = check_tensor("x", x, "(N, L, 3)")
    check_floating("x", x)
    check_rank("x", x, (3,), "(N, L, 3)")
    check_choice("encoding", encoding, ENCODINGS)
    if encoding == "delta":
        s = delta_encode(x.transpose(0, 1), threshold).transpose(0, 1)  # (L, N, 3) code -> (N, L, 3)
        return torch.cat([(s > 0).to(x.dtype), (s < 0).to(x.dtype)], dim=-1)  # (N, L, 6): ON | OFF
    mean = x.mean(dim=(0, 1)) if mean is None else mean
    std = x.std(dim=(0, 1)) if std is None else std
    z = (x - mean) / std.clamp(min=1e-6)  # (N, L, 3)
    if encoding == "current":
        return z
    return rate_encode(torch.sigmoid(z), generator=torch.Generator().manual_seed(seed))


@torch_threads(1)
def compare_on_sensor(seed: int = 0, *, hidden_size: int = 64, encoding: str = "current", n_train: int = 2000,
                      n_test: int = 1000, seq_len: int = 64, epochs: int = 15, spiking_epochs: int | None = 25,
                      beta: float = 0.9, learn_beta: bool = True, threshold: float = 1.0, lr: float = 5e-3,
                      batch_size: int = 64) -> dict[str, float]:
    """Train a recurrent spiking network (:class:`~seqlib.spiking.SpikingClassifier`) and a GRU of the same hidden
    size on the six-class sensor task, and count what each costs per window.

    Both draw their training windows from ``sensor_activity(n_train, seq_len, seed=1000 + seed)`` and are tested on
    ``sensor_activity(n_test, seq_len, seed=2000 + seed)``; the GRU sees the standardised readings, the spiking net
    the same readings through ``encoding`` (:func:`encode_sensor`). With ``learn_beta`` every LIF neuron learns its
    own decay (starting from ``beta``). The GRU trains for ``epochs`` epochs, the spiking network for
    ``spiking_epochs`` (``None``: ``epochs``); Adam with learning rate ``lr`` for both.

    Returns:
        ``{"snn_accuracy", "gru_accuracy", "firing_rate", "snn_acs", "snn_macs", "snn_energy_pj", "gru_macs",
        "gru_energy_pj", "snn_seconds", "gru_seconds"}``; operation counts are per test window.
    """
    check_choice("encoding", encoding, ENCODINGS)
    train = sensor_activity(n_train, seq_len, seed=1000 + seed)
    test = sensor_activity(n_test, seq_len, seed=2000 + seed)
    mean, std = train.inputs.mean(dim=(0, 1)), train.inputs.std(dim=(0, 1))
    x_train, x_test = (train.inputs - mean) / std, (test.inputs - mean) / std  # (N, L, 3) standardised
    s_train = encode_sensor(train.inputs, encoding, mean=mean, std=std, seed=seed)
    s_test = encode_sensor(test.inputs, encoding, mean=mean, std=std, seed=seed + 1)
    classes = len(train.classes)
    recipe = {"lr": lr, "batch_size": batch_size, "schedule": "constant", "seed": seed, "progress": False}

    torch.manual_seed(seed)
    snn = SpikingClassifier(s_train.shape[-1], hidden_size, classes, threshold=threshold, learn_beta=learn_beta,
                            beta=torch.full((hidden_size,), beta) if learn_beta else beta)
    start = time.perf_counter()
    train_classifier(snn, (s_train, train.targets), epochs=spiking_epochs or epochs, **recipe)
    snn_seconds = time.perf_counter() - start
    snn_acc = accuracy(snn, (s_test, test.targets))
    with torch.no_grad():
        snn.eval()
        snn(s_test)
    spikes = snn.last_spikes  # (L, N, H)
    snn_cost = spiking_ops(spikes, s_test.transpose(0, 1), input_is_spikes=encoding != "current",
                           num_classes=classes)

    torch.manual_seed(seed)
    gru = RNNClassifier(classes, hidden_size, cell="gru", input_size=3)
    start = time.perf_counter()
    train_classifier(gru, (x_train, train.targets), epochs=epochs, **recipe)
    gru_seconds = time.perf_counter() - start
    gru_cost = gru_ops(seq_len, 3, hidden_size, classes)
    return {"snn_accuracy": snn_acc, "gru_accuracy": accuracy(gru, (x_test, test.targets)),
            "firing_rate": firing_rate(spikes), "snn_acs": snn_cost.acs, "snn_macs": snn_cost.macs,
            "snn_energy_pj": snn_cost.energy_pj(), "gru_macs": gru_cost.macs, "gru_energy_pj": gru_cost.energy_pj(),
            "snn_seconds": snn_seconds, "gru_seconds": gru_seconds}
