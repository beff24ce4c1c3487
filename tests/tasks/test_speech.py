"""Speech task: features from known signals, CTC decoding, error rates, input reading,
and a short real sweep -> predict -> speaker fine-tune on the shipped data."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

import tuner
from tuner.config.space_file import parse_space
from tuner.contract.checkpoints import load_checkpoint
from tuner.errors import DataError
from tuner.models.sources import resolve_source
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.study import default_data_path
from tuner.tasks.speech.audio import frame_count, log_mel, read_wav, resample
from tuner.tasks.speech.data import read_utterances
from tuner.tasks.speech.model import mask_spectrum, stack_frames
from tuner.tasks.speech.task import TASK, ctc_steps, fit_space
from tuner.tasks.speech.text import ErrorRates, beam_decode, edit_distance, greedy_decode

SHIPPED = Path(default_data_path(TASK)).parent.parent


def stores() -> tuple[str, str]:
    return default_tracking_uri(), resolve_storage(None)


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2, channels: int = 1):
    scale = float(2 ** (8 * width - 1) - 1)
    if width == 1:
        raw = (np.clip(samples, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = (np.clip(samples, -1, 1) * scale).astype("<i4")
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        raw = (np.clip(samples, -1, 1) * scale).astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(raw)
    return path


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32
    )


# ---------------------------------------------------------------- features


@pytest.mark.parametrize("hz", [300.0, 1000.0, 2500.0])
def test_pure_tone_lands_in_its_mel_band(hz):
    features = log_mel(tone(hz, 0.5, 8000), 8000, n_mels=40, window_ms=25, hop_ms=10)
    # HTK mel band centres, 40 bands between 0 Hz and 4 kHz
    edges = np.linspace(0, 2595 * np.log10(1 + 4000 / 700), 42)
    centres = 700 * (10 ** (edges[1:-1] / 2595) - 1)
    loudest = int(features[5:-5].mean(0).argmax())
    assert abs(loudest - int(np.abs(centres - hz).argmin())) <= 1
    assert features[5:-5].mean(0)[loudest] > features[5:-5].mean(0).median() + 5


@pytest.mark.parametrize(
    "samples, rate, hop_ms",
    [(4000, 8000, 10), (4001, 8000, 10), (16000, 16000, 10), (1234, 8000, 5)],
)
def test_frame_count_follows_length_rate_and_hop(samples, rate, hop_ms):
    features = log_mel(tone(440, samples / rate, rate)[:samples], rate, 24, 25, hop_ms)
    hop = int(rate * hop_ms / 1000)
    assert features.shape == (frame_count(samples, hop), 24)
    assert features.shape[0] == 1 + samples // hop


def test_resampling_keeps_duration_and_pitch():
    out = resample(tone(1000, 1.0, 22050), 22050, 8000)
    assert len(out) == 8000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(spectrum.argmax() * 8000 / len(out) - 1000) <= 1


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_widths_and_stereo_read_as_the_same_signal(tmp_path, width):
    signal = tone(440, 0.2, 8000)
    stereo = np.repeat(signal, 2)
    path = write_wav(tmp_path / "x.wav", stereo, 8000, width=width, channels=2)
    samples, rate = read_wav(path)
    assert rate == 8000 and len(samples) == len(signal)
    assert np.abs(samples - signal).max() < (0.02 if width == 1 else 1e-3)


def test_stacking_and_masking_keep_shapes_and_lengths():
    x = torch.arange(2 * 7 * 3, dtype=torch.float32).reshape(2, 7, 3)
    stacked, steps = stack_frames(x, torch.tensor([7, 4]), 3)
    assert stacked.shape == (2, 3, 9) and steps.tolist() == [3, 2]
    assert stacked[0, 0].tolist() == x[0, :3].flatten().tolist()
    torch.manual_seed(0)
    masked = mask_spectrum(torch.ones(4, 50, 40), torch.tensor([50, 50, 30, 10]))
    assert masked.shape == (4, 50, 40)
    assert 0 < (masked == 0).float().mean() < 0.3


# ---------------------------------------------------------------- decoding and rates


def test_greedy_ctc_decoding_on_hand_made_logits():
    vocabulary = "abc"  # ids: 0 blank, 1 a, 2 b, 3 c
    path = [1, 1, 0, 1, 2, 2, 0, 0, 3, 0]  # a a _ a b b _ _ c _ -> "aabc"
    logits = torch.full((1, len(path), 5), -5.0)
    logits[0, torch.arange(len(path)), torch.tensor(path)] = 5.0
    assert greedy_decode(logits.log_softmax(-1), torch.tensor([10]), vocabulary) == ["aabc"]
    # frames past an utterance's length are ignored
    assert greedy_decode(logits.log_softmax(-1), torch.tensor([3]), vocabulary) == ["a"]


def test_beam_search_agrees_with_greedy_and_a_lexicon_mends_near_misses():
    vocabulary = " efinv"  # ids 1..6: space e f i n v
    # f, then blank just above 'i', then v just above n, then e: greedy reads "fve"
    frames = [{3: 0.9}, {0: 0.5, 4: 0.45}, {6: 0.5, 5: 0.45}, {2: 0.9}]
    probs = torch.full((1, len(frames), 8), 1e-3)
    for t, row in enumerate(frames):
        for label, p in row.items():
            probs[0, t, label] = p
    log_probs = (probs / probs.sum(-1, keepdim=True)).log()
    steps = torch.tensor([len(frames)])
    assert greedy_decode(log_probs, steps, vocabulary) == ["fve"]
    assert beam_decode(log_probs, steps, vocabulary) == ["fve"]
    assert beam_decode(log_probs, steps, vocabulary, lexicon="five nine") == ["five"]
    assert beam_decode(log_probs, steps, vocabulary, lexicon="nine") == ["nine"]


def test_edit_distance_and_error_rates_on_known_pairs():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("one two".split(), "one".split()) == 1
    rates = ErrorRates()
    rates.add(["one two three", "four"], ["one too three", "four"])
    assert rates.wer() == pytest.approx(1 / 4)
    assert rates.cer() == pytest.approx(1 / 17)  # "two"->"too": 1 edit in 13 + 4 characters


def test_ctc_steps_count_a_blank_between_doubled_letters():
    assert ctc_steps("three") == 6 and ctc_steps("one") == 3 and ctc_steps("") == 1


# ---------------------------------------------------------------- reading input


def test_folder_with_transcripts_and_speakers_from_names(tmp_path):
    for name in ("3_ann_0.wav", "4_bob_1.wav", "4_ann_2.wav"):
        write_wav(tmp_path / name, tone(440, 0.3, 16000), 16000)
    pattern = r"^(?P<transcript>\d)_(?P<speaker>[a-z]+)_"
    data = read_utterances({"data": str(tmp_path), "transcript_from_name": pattern})
    assert data.transcripts == ["3", "4", "4"] and data.speakers == ["ann", "ann", "bob"]
    held = read_utterances(
        {"data": str(tmp_path), "transcript_from_name": pattern, "test_speaker": "bob"}
    )
    assert held.split.tolist() == ["train", "train", "test"]


def test_features_are_computed_once_per_setting():
    data = TASK.load_data({"data": default_data_path(TASK)})
    settings = dict(TASK.defaults)
    first = data.features(settings)
    assert data.features(settings) is first
    assert data.features({**settings, "n_mels": 24})[0].shape[1] == 24
    assert len(first) == len(data.files) == 720


def test_speed_perturbation_adds_faster_and_slower_copies_of_training_audio():
    data = TASK.load_data({"data": default_data_path(TASK)})
    settings = {**TASK.defaults, "speed_perturb": 0.1}
    plain = TASK.build_datamodule(data, TASK.defaults).tensors
    perturbed = TASK.build_datamodule(data, settings).tensors
    train = len(plain["train"][0])
    assert len(perturbed["train"][0]) == 3 * train
    assert torch.equal(perturbed["val"][1], plain["val"][1])  # evaluation is untouched
    lengths = perturbed["train"][1].double()
    slow, fast = lengths[train : 2 * train], lengths[2 * train :]
    assert (slow / lengths[:train]).mean() == pytest.approx(1 / 0.9, rel=0.03)
    assert (fast / lengths[:train]).mean() == pytest.approx(1 / 1.1, rel=0.03)
    assert torch.equal(perturbed["train"][2][train : 2 * train], perturbed["train"][2][:train])


def test_subsample_is_capped_by_the_shortest_utterance(tmp_path):
    write_wav(tmp_path / "a.wav", tone(440, 0.1, 8000), 8000)  # 10 frames
    rows = "path,transcript,split\na.wav,{0},train\na.wav,{0},val\n"
    (tmp_path / "m.csv").write_text(rows.format("abcd"))  # 4 steps
    data = read_utterances({"data": str(tmp_path / "m.csv")})
    raw = {
        "metric": "val_cer",
        "params": {"subsample": {"type": "categorical", "choices": [1, 2, 3]}},
    }
    space, notes = fit_space(parse_space(raw, TASK.spec, "s.yaml"), data)
    assert space.param("subsample").choices == (1, 2) and "capped at 2" in notes[0]
    (tmp_path / "m.csv").write_text(rows.format("abcdefghijklmn"))
    with pytest.raises(DataError, match="too short"):
        fit_space(
            parse_space(raw, TASK.spec, "s.yaml"),
            read_utterances({"data": str(tmp_path / "m.csv")}),
        )


# ---------------------------------------------------------------- end to end


def test_speaker_held_out_sweep_predict_and_finetune(workdir):
    """Tune on five FSDD speakers, test on the sixth, fine-tune on a few of its takes."""
    manifest = SHIPPED / "fsdd" / "manifest.csv"
    settings = {"max_epochs": 3, "hidden_size": 32, "num_layers": 1, "batch_size": 32}
    result = tuner.search(
        "speech",
        trials=1,
        overrides=settings,
        data={"data": str(manifest), "test_speaker": "theo"},
        study="five",
        pruner="none",
        quiet=True,
    )
    assert result.counts["complete"] == 1
    assert 0 <= result.test_metrics["test_cer"] <= 1.5
    theo = workdir / "theo.csv"  # only "zero" to "four": no 'v', 's', 'x', 'g' in it
    rows = [r.split(",") for r in manifest.read_text().splitlines()[1:] if ",theo," in r]
    rows = [r for r in rows if r[1] in ("zero", "one", "two", "three", "four")]
    theo.write_text(
        "path,transcript,split\n"
        + "".join(
            f"{SHIPPED / 'fsdd' / r[0]},{r[1]},{'train' if i % 3 else 'val'}\n"
            for i, r in enumerate(rows)
        )
    )
    tuned = tuner.finetune("study:five", data={"data": str(theo)}, max_epochs=1, quiet=True)
    assert math.isfinite(tuned.before) and math.isfinite(tuned.after)
    source = load_checkpoint(resolve_source("study:five", *stores()).path, task="speech")
    again = load_checkpoint(
        resolve_source("models:/five-finetuned/1", *stores()).path, task="speech"
    )
    vocabulary = source["hyper_parameters"]["vocabulary"]
    assert "v" in vocabulary  # the labels of the new data are encoded the source's way
    assert again["settings"]["vocabulary"] == vocabulary
    assert again["hyper_parameters"]["vocabulary"] == vocabulary
    table = tuner.predict("study:five", data={"data": str(SHIPPED / "fsdd" / "7_theo_3.wav")})
    assert table.columns.tolist() == ["path", "transcript"] and len(table) == 1
    assert table["path"][0].endswith("7_theo_3.wav")
