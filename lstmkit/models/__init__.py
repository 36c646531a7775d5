"""Task models built on the recurrent layers, and the blocks they are composed of.

Shape legend: B batch, T time, F input features, H hidden units, O recurrent output features,
C classes, V vocabulary, E embedding size, W window, K horizon.

Every model is a plain ``torch.nn.Module`` whose ``forward`` returns the prediction and, given
targets, the loss, like nanoGPT: ``logits, loss = model(x, lengths=lengths, targets=y)``.

- :class:`SequenceClassifier` (many-to-one), :class:`Forecaster` (direct multi-step),
  :class:`GlobalForecaster` (quantiles of many series' next steps, one model),
  :class:`SequenceTagger` (a tag per step: BiLSTM-CRF), :class:`LanguageModel` (the next token;
  text generation in :mod:`lstmkit.models.generation`),
  :class:`Seq2Seq` (an encoder-decoder with :class:`Attention`: greedy, sampling, batched beam
  search), :class:`CTCRecognizer` (label sequences from frames, unsegmented: CTC; decoders in
  :mod:`lstmkit.models.ctc_decoding`), :class:`Ensemble` (several of either, averaged);
- blocks: :class:`TokenEmbedding` (word dropout, frozen pretrained vectors), :class:`InputNoise`,
  :class:`Pooling` / :func:`pool` (last, mean, max, attention over the valid steps),
  :class:`CharCNN` and :class:`CharRNN` (a word's vector from its characters).
"""

from .attention import Attention
from .characters import CharCNN, CharRNN
from .classifier import SequenceClassifier
from .ctc import CTCRecognizer
from .ensemble import Ensemble
from .forecaster import Forecaster
from .global_forecaster import GlobalForecaster, monotone, pinball_loss
from .inputs import InputNoise, TokenEmbedding
from .language_model import EmbeddingDropout, LanguageModel, LockedDropout, detach_state
from .output import linear_cross_entropy
from .pooling import POOLINGS, Pooling, concat_split, pool
from .seq2seq import Hypothesis, Seq2Seq
from .tagger import SequenceTagger
from .xlstm import XLSTM, HeadNorm, MLSTMBlock, SLSTMBlock, block_pattern, build_xlstm, xlstm_blocks

__all__ = ["SequenceClassifier", "Forecaster", "Ensemble", "TokenEmbedding", "InputNoise", "Pooling", "POOLINGS",
           "pool", "concat_split", "CharCNN", "CharRNN", "SequenceTagger", "LanguageModel", "LockedDropout",
           "EmbeddingDropout", "detach_state", "linear_cross_entropy", "CTCRecognizer", "Seq2Seq",
           "Hypothesis", "Attention", "SLSTMBlock", "MLSTMBlock", "HeadNorm", "block_pattern", "xlstm_blocks",
           "XLSTM", "build_xlstm", "GlobalForecaster", "monotone", "pinball_loss"]
