"""Task models of the core: pooling over valid steps, padding independence, forecaster shapes."""

import pytest
import torch

from lstmkit.models import POOLINGS, Ensemble, Forecaster, SequenceClassifier, pool


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_ignores_padding(pooling, bidirectional):
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 3, 8, 4, pooling=pooling, bidirectional=bidirectional).double()
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    lengths = torch.tensor([9, 4, 6])
    logits, _ = model(x, lengths=lengths)
    padded = x.clone()
    padded[1, 4:] = 100.0                                    # garbage past the length
    padded[2, 6:] = -7.0
    assert torch.allclose(model(padded, lengths=lengths)[0], logits, atol=1e-12)
    for b in range(3):                                       # each sequence alone, unpadded
        alone, _ = model(x[b:b + 1, :lengths[b]])
        assert torch.allclose(alone, logits[b:b + 1], atol=1e-12)


def test_last_pooling_of_bidirectional_takes_each_direction_final_output():
    y = torch.arange(2 * 4 * 6, dtype=torch.float64).reshape(2, 4, 6)   # (B, T, O), O = 3 + 3
    lengths = torch.tensor([4, 2])
    out = pool(y, lengths, "last", split=3)
    assert torch.equal(out[0], torch.cat([y[0, 3, :3], y[0, 0, 3:]]))
    assert torch.equal(out[1], torch.cat([y[1, 1, :3], y[1, 0, 3:]]))


def test_token_classifier_and_errors():
    model = SequenceClassifier("gru", 1, 8, 2, vocab_size=50, embedding_size=6)
    logits, loss = model(torch.randint(1, 50, (5, 7)), lengths=torch.tensor([7, 3, 5, 1, 2]),
                         targets=torch.tensor([0, 1, 1, 0, 1]))
    assert logits.shape == (5, 2) and loss.requires_grad
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier("lstm", 3, 8, 2, pooling="sum")
    with pytest.raises(TypeError, match="num_classes"):
        SequenceClassifier("lstm", 3, 8, 2.0)
    with pytest.raises(ValueError, match="horizon"):
        Forecaster("lstm", 1, 8, horizon=0)


def test_word_dropout_replaces_tokens_by_unk_in_training_only():
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 1, 8, 2, vocab_size=50, embedding_size=6, word_dropout=0.5, unk_index=1)
    seen = []
    model.rnn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    tokens = torch.randint(2, 50, (64, 10))
    tokens[:, 7:] = 0                                        # padding stays padding
    model.train()
    model(tokens)
    dropped = seen[-1].eq(model.embedding(torch.tensor(1))).all(-1)        # positions embedded as <unk>
    assert not dropped[:, 7:].any()
    assert 0.4 < dropped[:, :7].float().mean() < 0.6
    model.eval()
    model(tokens)
    assert torch.equal(seen[-1], model.embedding(tokens))
    with pytest.raises(ValueError, match="word_dropout"):
        SequenceClassifier("lstm", 3, 8, 2, word_dropout=0.1)          # features: nothing to drop
    with pytest.raises(ValueError, match="word_dropout"):
        SequenceClassifier("lstm", 1, 8, 2, vocab_size=50, word_dropout=1.0)
    with pytest.raises(ValueError, match="unk_index"):
        SequenceClassifier("lstm", 1, 8, 2, vocab_size=50, word_dropout=0.1, unk_index=50)


def test_input_noise_perturbs_the_inputs_in_training_only():
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 3, 8, 2, input_noise=0.5)
    seen = []
    model.rnn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(256, 20, 3)
    model.train()
    model(x)
    assert abs(float((seen[-1] - x).std()) - 0.5) < 0.02              # the noise has the asked deviation
    model.eval()
    model(x)
    assert torch.equal(seen[-1], x)
    text = SequenceClassifier("lstm", 1, 8, 2, vocab_size=50, embedding_size=6, input_noise=0.1).train()
    text.rnn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    tokens = torch.randint(1, 50, (4, 5))
    text(tokens)
    assert not torch.equal(seen[-1], text.embedding(tokens))             # noise on the embeddings
    with pytest.raises(ValueError, match="input_noise"):
        SequenceClassifier("lstm", 3, 8, 2, input_noise=-0.1)
    with pytest.raises(TypeError, match="input_noise"):
        SequenceClassifier("lstm", 3, 8, 2, input_noise="0.1")


def test_ensemble_averages_its_members():
    torch.manual_seed(0)
    members = [SequenceClassifier("gru", 3, 8, 4, pooling="mean").double() for _ in range(3)]
    model = Ensemble(members, combine="probabilities")
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    y, lengths = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([7, 2, 5, 7, 1])
    logits, loss = model(x, lengths=lengths, targets=y)
    outs = [m(x, lengths=lengths, targets=y) for m in members]
    mean_probs = torch.stack([torch.softmax(o, -1) for o, _ in outs]).mean(0)
    assert torch.allclose(logits.exp(), mean_probs, atol=1e-12)
    assert torch.allclose(loss, sum(l for _, l in outs) / 3, atol=1e-12)
    loss.backward()                                          # each member gets its own loss's gradient / 3
    alone = members[1].head.weight.grad.clone()
    members[1].zero_grad()
    (outs[1][1] / 3).backward()
    assert torch.allclose(members[1].head.weight.grad, alone, atol=1e-12)

    forecasters = [Forecaster("lstm", 1, 8, horizon=3) for _ in range(2)]
    x = torch.randn(4, 10, 1)
    pred, loss = Ensemble(forecasters, combine="mean")(x)
    assert loss is None and torch.allclose(pred, (forecasters[0](x)[0] + forecasters[1](x)[0]) / 2)
    with pytest.raises(ValueError, match="combine"):
        Ensemble(forecasters, combine="vote")
    with pytest.raises(ValueError, match="members"):
        Ensemble([], combine="mean")


def test_forecaster_trains():
    torch.manual_seed(0)
    model = Forecaster("lstm", 1, 16, horizon=4)
    t = torch.arange(300, dtype=torch.float32)
    series = torch.sin(t / 5)
    x = series.unfold(0, 24, 1)[:-4, :, None]                # (N, 24, 1)
    y = series.unfold(0, 4, 1)[24:]                          # (N, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        _, loss = model(x, targets=y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first or loss.item()
    assert loss.item() < first / 20


def test_weights_saved_before_pooling_was_a_module_still_load():
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 3, 8, 2, pooling="attention")
    old = {k.replace("pool.attention.", "attention."): v for k, v in model.state_dict().items()}
    assert "attention.weight" in old
    fresh = SequenceClassifier("lstm", 3, 8, 2, pooling="attention")
    fresh.load_state_dict(old)
    x = torch.randn(2, 5, 3)
    assert torch.equal(fresh.eval()(x)[0], model.eval()(x)[0])
