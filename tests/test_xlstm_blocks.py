"""The xLSTM's residual blocks: the ratio notation, streaming equal to one pass, lengths, the
language model and the sequence classifier built of them, and a run from a config."""

import json
import random

import pytest
import torch

from lstmkit import cli
from lstmkit.models import XLSTM, LanguageModel, MLSTMBlock, SequenceClassifier, SLSTMBlock, block_pattern

F64 = torch.float64


@pytest.mark.parametrize("blocks,n,expected", [("7:1", 8, "mmmmsmmm"), ("1:1", 4, "msms"), ("1:0", 3, "mmm"),
                                               ("0:1", 2, "ss"), ("3:1", 12, "mmsmmmsmmmsm"), ("msm", 3, "msm")])
def test_block_patterns_read_the_papers_ratios(blocks, n, expected):
    assert block_pattern(blocks, n) == expected


@pytest.mark.parametrize("blocks,n,message", [("0:0", 2, "a ratio with a positive part"),
                                              ("mx", 2, "a string of 'm' and 's' per layer, got 'mx'"),
                                              ("mmm", 2, "one letter per layer \\(2\\), got 3 in 'mmm'")])
def test_bad_block_patterns_are_named(blocks, n, message):
    with pytest.raises(ValueError, match=f"xLSTM: argument 'blocks' expected .*{message}"):
        block_pattern(blocks, n)


@pytest.mark.parametrize("block", [SLSTMBlock(8, heads=2), MLSTMBlock(8, heads=2, chunk_size=4)],
                         ids=["slstm", "mlstm"])
def test_a_block_streams_step_by_step_and_in_pieces_as_in_one_pass_and_keeps_padding_out(block):
    torch.manual_seed(0)
    block = block.double()
    x = torch.randn(3, 11, 8, dtype=F64)
    y, final = block(x)
    state, steps = None, []
    for t in range(11):
        y_t, state = block.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-10, atol=1e-10)
    y1, s = block(x[:, :4])
    y2, s = block(x[:, 4:], s)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-10)
    lengths = torch.tensor([11, 5, 1])
    padded = x.clone()
    padded[1, 5:] = 1e3
    y_l, final_l = block(padded, lengths=lengths)
    torch.testing.assert_close(y_l[1, :5], block(x[1:2, :5])[0][0], rtol=1e-10, atol=1e-10)
    assert y_l[1, 5:].abs().sum() == 0 and y_l[2, 1:].abs().sum() == 0


def test_a_language_model_of_blocks_streams_as_it_reads_whole_windows():
    torch.manual_seed(1)
    model = LanguageModel("lstm", 20, 8, num_layers=4, blocks="1:1", heads=2, chunk_size=4).double().eval()
    tokens = torch.randint(0, 20, (2, 9))
    logits, _, _ = model(tokens)
    state, steps = None, []
    for t in range(9):
        out, state = model.step(tokens[:, t], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), logits, rtol=1e-10, atol=1e-10)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["MLSTMBlock", "SLSTMBlock", "MLSTMBlock", "SLSTMBlock"]
    with pytest.raises(ValueError, match="argument 'embedding_size' expected hidden_size 8 with blocks"):
        LanguageModel("lstm", 20, 8, embedding_size=6, blocks="ms", num_layers=2)
    with pytest.raises(ValueError, match="argument 'weight_drop' expected 0 with blocks"):
        LanguageModel("lstm", 20, 8, blocks="ms", num_layers=2, weight_drop=0.5)


def test_a_classifier_of_blocks_ignores_padding_and_refuses_two_directions():
    torch.manual_seed(2)
    model = SequenceClassifier("lstm", 3, 8, 4, blocks="sm", num_layers=2, heads=2, bidirectional=False).eval()
    assert isinstance(model.rnn, XLSTM)
    x = torch.randn(2, 7, 3)
    padded = x.clone()
    padded[1, 4:] = 50.0
    with torch.no_grad():
        logits, _ = model(padded, lengths=torch.tensor([7, 4]))
        alone, _ = model(x[1:, :4])
    torch.testing.assert_close(logits[1:], alone, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="xLSTM: argument 'bidirectional' expected False"):
        SequenceClassifier("lstm", 3, 8, 4, blocks="sm", num_layers=2, bidirectional=True)


def test_an_xlstm_language_model_trains_and_generates_from_a_config(tmp_path, capsys):
    sentences = ["the cat sat on the mat", "a dog ran on a log", "the dog and the cat sat"]
    rng = random.Random(0)
    for name, count in (("train", 300), ("valid", 40), ("test", 40)):
        (tmp_path / f"{name}.txt").write_text("\n".join(rng.choice(sentences) for _ in range(count)) + "\n")
    config = tmp_path / "xlstm.yaml"
    config.write_text(f"""task: language_model
seed: 1
data:
  dataset: files
  train_file: {tmp_path / 'train.txt'}
  valid_file: {tmp_path / 'valid.txt'}
  test_file: {tmp_path / 'test.txt'}
  batch_size: 4
  bptt: 8
model:
  hidden_size: 16
  num_layers: 2
  blocks: "1:1"
  init_range: null
  cell_options: {{heads: 2, chunk_size: 4}}
optim: {{epochs: 4, optimizer: adam, lr: 0.02, schedule: none}}
trainer: {{progress_bar: false}}
""")
    run = tmp_path / "run"
    assert cli.main(["train", str(config), "--run-dir", str(run)]) == 0
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["perplexity"] < 1.6               # three sentences, one choice of log(3) nats per ~7 tokens: 1.17
    capsys.readouterr()
    assert cli.main(["generate", str(run), "--prompt", "the cat", "--max-tokens", "10", "--seed", "3"]) == 0
    assert capsys.readouterr().out.startswith("the cat")
    for written, message in (('"mq"', "a string of 'm' and 's' per layer"), ("1:1", "write the ratio in quotes")):
        config.write_text(config.read_text().replace('blocks: "1:1"', f"blocks: {written}"))
        assert cli.main(["train", str(config), "--run-dir", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        config.write_text(config.read_text().replace(f"blocks: {written}", 'blocks: "1:1"'))


def test_an_xlstm_network_steps_as_it_reads_and_serving_sessions_may_step_it():
    from lstmkit.runs.stream import forward_only, initial_state
    torch.manual_seed(3)
    net = XLSTM(3, 8, "ms", num_layers=2, heads=2, chunk_size=4).double().eval()
    x = torch.randn(2, 7, 3, dtype=F64)
    y, _ = net(x)
    state, steps = net.init_state(2, dtype=F64), []
    for t in range(7):
        y_t, state = net.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-10, atol=1e-10)
    assert forward_only(net) and [tuple(s.shape) for s in initial_state(net)[0]] == [(1, 2, 8, 8), (1, 2, 8), (1, 2)]
