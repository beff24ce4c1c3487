"""Audio in, log-mel frames out: PCM WAV reading (standard library), resampling and a
log-mel filterbank from `torch.stft`. No torchaudio: it pins its own torch."""

from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tuner.config.files import regular_file
from tuner.errors import DataError

MIN_SECONDS = 0.05  # shorter than this is a click, not speech
MIN_RATE = 1000  # Hz: below this a header is wrong, and resampling it would take minutes


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], their rate in Hz); a DataError names what is wrong.
    Resampling waits until the feature rate is known (it is a setting, not data)."""
    regular_file(path, "audio file", "a PCM WAV file", DataError)
    try:
        with wave.open(str(path), "rb") as handle:
            channels, width = handle.getnchannels(), handle.getsampwidth()
            source_rate = handle.getframerate()
            raw = handle.readframes(handle.getnframes())
    except (wave.Error, EOFError) as exc:
        raise DataError(
            f"{path}: not a PCM WAV file ({exc}); expected uncompressed 8/16/24/32-bit PCM"
        ) from None
    _check_header(path, channels, width, source_rate)
    raw = raw[: len(raw) - len(raw) % (width * channels)]  # a truncated last frame
    samples = _decode_pcm(raw, width).reshape(-1, channels).mean(axis=1)
    if samples.size == 0:
        raise DataError(f"{path}: the audio is empty (0 samples)")
    if samples.size < MIN_SECONDS * source_rate:
        raise DataError(
            f"{path}: {samples.size / source_rate * 1000:.0f} ms of audio is too short; "
            f"expected at least {MIN_SECONDS * 1000:.0f} ms"
        )
    return samples.astype(np.float32), source_rate


def _check_header(path: Path, channels: int, width: int, rate: int) -> None:
    """A header that no PCM decoder can use (a zero rate, 12-bit samples), in one line."""
    if rate < MIN_RATE:
        raise DataError(
            f"{path}: its header gives a sample rate of {rate} Hz; expected {MIN_RATE} Hz or more"
        )
    if width not in (1, 2, 3, 4):
        raise DataError(
            f"{path}: its header gives {8 * width}-bit samples; expected 8, 16, 24 or 32-bit PCM"
        )
    if channels < 1:
        raise DataError(f"{path}: its header gives {channels} channels; expected 1 or more")


def _decode_pcm(raw: bytes, width: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 3:
        bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        padded = np.zeros((len(bytes3), 4), np.uint8)
        padded[:, 1:] = bytes3
        return padded.view("<i4").ravel().astype(np.float32) / 2**31
    dtype = {2: "<i2", 4: "<i4"}[width]
    return np.frombuffer(raw, dtype).astype(np.float32) / float(2 ** (8 * width - 1))


def resample(samples: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """Band-limited resampling in the frequency domain (exact for whole files, which is
    all this task reads)."""
    if source_rate == rate:
        return samples
    count = max(1, round(len(samples) * rate / source_rate))
    spectrum = np.fft.rfft(samples)
    kept = np.zeros(count // 2 + 1, dtype=spectrum.dtype)
    bins = min(len(kept), len(spectrum))
    kept[:bins] = spectrum[:bins]
    return (np.fft.irfft(kept, count) * (count / len(samples))).astype(np.float32)


def frame_count(samples: int, hop: int) -> int:
    """Frames `torch.stft(center=True)` gives for `samples` samples."""
    return 1 + samples // hop


@lru_cache(maxsize=8)
def mel_matrix(n_mels: int, n_fft: int, rate: int) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular HTK-mel filters from 0 Hz to Nyquist."""

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges_mel = np.linspace(0.0, to_mel(np.array(rate / 2)), n_mels + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    return torch.tensor(np.maximum(0.0, np.minimum(rising, falling)).T, dtype=torch.float32)


def log_mel(
    samples: np.ndarray, rate: int, n_mels: int, window_ms: float, hop_ms: float
) -> torch.Tensor:
    """(frames, n_mels) log mel energies of one utterance."""
    window = int(rate * window_ms / 1000)
    hop = int(rate * hop_ms / 1000)
    n_fft = 1 << (window - 1).bit_length()
    spectrum = torch.stft(
        torch.from_numpy(samples),
        n_fft,
        hop_length=hop,
        win_length=window,
        window=torch.hann_window(window),
        center=True,
        return_complex=True,
    )
    power = spectrum.abs().pow(2).T  # (frames, bins)
    return torch.log(power @ mel_matrix(n_mels, n_fft, rate) + 1e-6)
