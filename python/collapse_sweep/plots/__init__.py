"""Figures of a collapse-sweep file: phase diagram, traces, theory (the collapse-sweep-plot command)."""
from .cli import main, plot_sweep
from .phase import phase_figure
from .theory import theory_figure
from .traces import default_points, traces_figure

__all__ = ['main', 'plot_sweep', 'phase_figure', 'traces_figure', 'theory_figure', 'default_points']
