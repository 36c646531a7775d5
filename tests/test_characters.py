"""Character-level word encoders: a word's vector depends on its own characters only."""

import pytest
import torch

from lstmkit.models import CharCNN, CharRNN

ENCODERS = [lambda: CharCNN(30, embedding_size=5, filters=7, width=3),
            lambda: CharRNN(30, embedding_size=5, hidden_size=4, cell="lstm"),
            lambda: CharRNN(30, embedding_size=5, hidden_size=4, cell="gru")]


def _words(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([[3, 5, 1], [6, 0, 2]])
    chars = torch.randint(1, 30, (2, 3, 6), generator=g)
    return chars, lengths


@pytest.mark.parametrize("make", ENCODERS)
def test_a_words_vector_ignores_padding_and_its_neighbours(make):
    torch.manual_seed(0)
    encoder = make().double().eval()
    chars, lengths = _words()
    out = encoder(chars, lengths)
    assert out.shape == (2, 3, encoder.output_size)
    noisy = chars.clone()
    for b in range(2):
        for t in range(3):
            noisy[b, t, lengths[b, t]:] = torch.randint(1, 30, (6 - int(lengths[b, t]),))   # garbage past the word
    assert torch.allclose(encoder(noisy, lengths), out, rtol=0, atol=1e-12)
    for b, t in ((0, 0), (0, 2), (1, 0), (1, 2)):                 # alone, unpadded, in a batch of one
        n = int(lengths[b, t])
        alone = encoder(chars[b:b + 1, t:t + 1, :n], lengths[b:b + 1, t:t + 1])
        assert torch.allclose(alone[0, 0], out[b, t], rtol=0, atol=1e-12)
    assert torch.equal(out[1, 1], torch.zeros(encoder.output_size, dtype=out.dtype))    # a padding word
    out.sum().backward()


def test_char_rnn_reads_the_word_both_ways():
    torch.manual_seed(0)
    encoder = CharRNN(30, embedding_size=5, hidden_size=4).double().eval()
    chars = torch.tensor([[[3, 7, 9]]])
    word = encoder.dropout(encoder.embed(chars[0]))                           # (1, 3, E)
    y, _ = encoder.rnn(word)
    out = encoder(chars, torch.tensor([[3]]))[0, 0]
    assert torch.allclose(out[:4], y[0, -1, :4]) and torch.allclose(out[4:], y[0, 0, 4:])
    flipped = encoder(chars.flip(-1), torch.tensor([[3]]))[0, 0]
    assert not torch.allclose(out, flipped)                                 # spelling order matters


@pytest.mark.parametrize("call, message", [
    (lambda: CharCNN(30, width=2), r"argument 'width' expected an odd number"),
    (lambda: CharCNN(0), r"argument 'num_chars' expected a positive int"),
    (lambda: CharCNN(30)(torch.ones(2, 3), torch.ones(2, 3, dtype=torch.long)), r"argument 'chars' expected an int64"),
    (lambda: CharRNN(30)(torch.ones(2, 3, 4, dtype=torch.long), torch.full((2, 3), 5)),
     r"argument 'char_lengths' expected values in \[0, 4\], got \[5, 5\]"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
