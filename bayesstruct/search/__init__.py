"""Structure search: DARTS, FBNet, NAS with an RL controller, random search, and enumeration by KL penalties.

Each search takes a :class:`~bayesstruct.nn.StructureGraph` (every edge with more than one
primitive is searched), training data and a validation split, and returns a
:class:`SearchResult`: the distribution over each edge's primitives, the chosen structure as
a trained :class:`~bayesstruct.nn.DiscreteStructureNetwork`, its validation loss and
accuracy, and the history of the search.

=================  =====================================================  ==============================
name               what                                                   paper
=================  =====================================================  ==============================
``"darts"``        softmax relaxation, bilevel gradient (first/second     Liu, Simonyan & Yang 2019
                   order)
``"fbnet"``        Gumbel-softmax samples, loss CE x a log(LAT)^b with a  Wu et al. 2019
                   measured latency table
``"reinforce"``    an LSTM controller samples structures, each trained;   Zoph & Le 2017
                   REINFORCE on the validation accuracy
``"random"``       distinct structures drawn uniformly, each trained:     Li & Talwalkar 2019
                   the baseline at equal cost
=================  =====================================================  ==============================

:func:`enumerate_structures` repeats a differentiable search with KL penalties against the
structures found before (the lecture's enumeration of structures).
"""

from bayesstruct.search.base import (Search, SearchData, SearchResult, get_search, input_reaches_output, list_searches,
                                     prepare_data, register_search, search, searchable_edges, structure_kl,
                                     train_discrete)
from bayesstruct.search.darts import DARTS
from bayesstruct.search.enumerate import enumerate_structures
from bayesstruct.search.fbnet import FBNet, latency_table, structure_latency
from bayesstruct.search.reinforce import REWARDS, Controller, RandomSearch, Reinforce, structure_name

__all__ = [
    "Controller",
    "REWARDS",
    "DARTS",
    "FBNet",
    "RandomSearch",
    "Reinforce",
    "Search",
    "SearchData",
    "SearchResult",
    "enumerate_structures",
    "get_search",
    "input_reaches_output",
    "latency_table",
    "list_searches",
    "prepare_data",
    "register_search",
    "search",
    "searchable_edges",
    "structure_kl",
    "structure_latency",
    "structure_name",
    "train_discrete",
]
