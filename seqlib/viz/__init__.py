"""Figures for the lectures: data in, a matplotlib ``Figure`` out.

Every function takes plain data (tensors, arrays or lists), draws it on a new :class:`matplotlib.figure.Figure`
and returns the figure. Nothing here calls ``plt.show()`` or touches pyplot's list of open figures, so the
functions work the same in a notebook (the figure displays when it is the value of a cell), in a script
(``fig.savefig(...)``), on a headless server and inside a widget. The maths that produces the data lives in the
rest of seqlib; the widgets of :mod:`seqlib.widgets` compute their numbers there and draw with these functions.

=================  ==========================================================================================
``diagrams``       the RNN unfolded in time (``draw_unrolled``, on an ``Axes`` you pass), the four application
                   types (``plot_application_types``) (C02, C03, C07)
``recurrent``      hidden states over a sentence, LSTM gates and cell state, gradient flow through time with
                   clipping: the figures of the recurrent demos (C03, C08-C12, C14)
``gradients``      gradient norms through time, Jacobian heatmaps, the clipping landscape, loss curves (C07-C12)
``attention``      attention step by step, positional encodings, multi-head attention, next-token distributions:
                   the figures of the attention demos (C20-C23, C28)
``spiking``        raster plots, membrane traces, the STDP window, learned STDP features (C33-C35)
``private``        fixed-point error curves, accuracy against bit-width, where secure inference's bytes go (C29-C32)
``quantization``   per-class accuracy against bit-width and scheme, quantization grids over class histograms
                   (C38-C39)
``distillation``   softened distributions at several temperatures, student accuracy over seeds (C36-C37)
=================  ==========================================================================================

Importing ``seqlib.viz`` imports matplotlib only when a function is first used; ``import seqlib`` never does.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# public name -> module of seqlib.viz that defines it
_EXPORTS: dict[str, str] = {
    "draw_unrolled": "diagrams",
    "plot_application_types": "diagrams",
    "plot_unrolled_states": "recurrent",
    "plot_lstm_gates": "recurrent",
    "plot_gradient_flow": "recurrent",
    "plot_gradient_norms": "gradients",
    "plot_jacobian_heatmap": "gradients",
    "plot_clipping_landscape": "gradients",
    "plot_loss_curves": "gradients",
    "plot_attention_steps": "attention",
    "plot_positional_encoding": "attention",
    "plot_multihead": "attention",
    "plot_next_token": "attention",
    "plot_raster": "spiking",
    "plot_membrane": "spiking",
    "plot_stdp_window": "spiking",
    "plot_stdp_features": "spiking",
    "plot_function_error": "private",
    "plot_error_vs_bits": "private",
    "plot_accuracy_vs_bits": "private",
    "plot_communication": "private",
    "plot_per_class_accuracy": "quantization",
    "plot_quantization_grid": "quantization",
    "plot_softened_distributions": "distillation",
    "plot_accuracy_bars": "distillation",
}
_SUBMODULES = {"diagrams", "recurrent", "gradients", "attention", "spiking", "private", "quantization", "distillation"}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS, _SUBMODULES)
