"""Training data for hear-dual: procedurally generated audio and an espeak-ng speech cache.

Nothing here reads any evaluation data. Every generator is a pure function of a numpy Generator, so a
clip is reproducible from (seed, index). All audio is float32 mono at 16 kHz.

Synthetic sources (label = SOURCE_CLASSES index; notes also carry a pitch bin):
    note      harmonic tone, log-uniform f0 in [60, 1000] Hz, random harmonic amplitudes and decays,
              ADSR envelope, vibrato; pitch bin = round(12 * log2(f0 / 60))  (semitones above 60 Hz)
    noise     coloured noise (1/f^a), optionally band-passed and amplitude-modulated
    impulses  regular or Poisson click trains through a decaying resonance
    chirp     linear or exponential sweeps, sometimes harmonic
    mixture   2-3 of the above summed with random gains
    speech    (class 5) a word from the espeak-ng cache

Speech cache (`python -m training.synth --cache DIR`): single NON-DIGIT English words (WORDS; the digit
words zero..nine, their homophones, and any word containing one of them are excluded by construction and
checked) spoken by SPEAKERS: each a fixed (espeak-ng English voice, voice variant, pitch, speed), with a
small per-utterance jitter of pitch and speed. espeak-ng writes 22050 Hz; soxr resamples to 16 kHz.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

SR = 16000
SOURCE_CLASSES = ("note", "noise", "impulses", "chirp", "mixture", "speech")
F0_MIN, F0_MAX = 60.0, 1000.0
N_PITCH_BINS = int(round(12 * np.log2(F0_MAX / F0_MIN))) + 1          # 49 semitone bins


# --- procedural audio ---------------------------------------------------------------------------------

def _normalise(x: np.ndarray) -> np.ndarray:
    peak = np.abs(x).max()
    return x / peak if peak > 0 else x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2) + 1e-12))


def _adsr(n: int, rng: np.random.Generator) -> np.ndarray:
    """Attack-decay-sustain-release envelope over n samples."""
    a = int(n * rng.uniform(0.002, 0.2))
    d = int(n * rng.uniform(0.02, 0.3))
    r = int(n * rng.uniform(0.05, 0.4))
    s = max(0, n - a - d - r)
    level = rng.uniform(0.2, 1.0)
    env = np.concatenate([np.linspace(0, 1, a, endpoint=False), np.linspace(1, level, d, endpoint=False),
                          np.full(s, level), np.linspace(level, 0, r)])
    return np.pad(env, (0, n - env.size))[:n]


def _place(event: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Put an event at a random offset in n samples (cropping it if longer)."""
    out = np.zeros(n)
    if event.size >= n:
        start = rng.integers(0, event.size - n + 1)
        return event[start:start + n].copy()
    start = rng.integers(0, n - event.size + 1)
    out[start:start + event.size] = event
    return out


def harmonic_note(n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    f0 = float(np.exp(rng.uniform(np.log(F0_MIN), np.log(F0_MAX))))
    pitch_bin = int(np.clip(round(12 * np.log2(f0 / F0_MIN)), 0, N_PITCH_BINS - 1))
    length = int(rng.uniform(0.25, 1.0) * n)
    t = np.arange(length) / SR
    vib_depth = rng.uniform(0, 0.015) if rng.random() < 0.6 else 0.0
    f_inst = f0 * (1 + vib_depth * np.sin(2 * np.pi * rng.uniform(3, 7) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(f_inst) / SR
    n_harm = max(1, min(40, int(7800 / (f0 * 1.02))))
    k = np.arange(1, n_harm + 1)
    amps = rng.uniform(0.1, 1.0, n_harm) * k ** -rng.uniform(0.3, 2.0)
    if rng.random() < 0.25:
        amps[1::2] *= 0.05                                               # clarinet-like, odd harmonics
    decay = rng.uniform(0, 6) * k ** rng.uniform(0, 1)                   # higher partials fade faster
    inharm = rng.uniform(0, 3e-4) if rng.random() < 0.3 else 0.0         # piano-like stretched partials
    x = np.zeros(length)
    for i in range(n_harm):
        ratio = k[i] * np.sqrt(1 + inharm * k[i] ** 2)
        if f0 * ratio > 7800:
            break
        x += amps[i] * np.exp(-decay[i] * t) * np.sin(ratio * phase + rng.uniform(0, 6.3))
    x *= _adsr(length, rng)
    return _place(_normalise(x), n, rng), pitch_bin


def _coloured_noise(n: int, rng: np.random.Generator, slope: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[1:] *= f[1:] ** (-slope / 2)
    spec[0] = 0
    return np.fft.irfft(spec, n)


def noise_texture(n: int, rng: np.random.Generator) -> np.ndarray:
    x = _coloured_noise(n, rng, rng.uniform(-1.0, 2.0))
    if rng.random() < 0.5:                                                # band-pass via FFT mask
        spec = np.fft.rfft(x)
        f = np.fft.rfftfreq(n, 1 / SR)
        centre = np.exp(rng.uniform(np.log(100), np.log(7000)))
        width = rng.uniform(0.1, 1.5)                                     # octaves
        spec *= np.exp(-0.5 * (np.log2(np.maximum(f, 1) / centre) / width) ** 2)
        x = np.fft.irfft(spec, n)
    t = np.arange(n) / SR
    if rng.random() < 0.4:                                                # amplitude modulation
        x *= 1 + rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(0.5, 20) * t + rng.uniform(0, 6.3))
    if rng.random() < 0.3:                                                # crackle: sparse gating
        gate = rng.random(n // 160 + 1) < rng.uniform(0.1, 0.6)
        x *= np.repeat(gate, 160)[:n]
    x = _normalise(x)
    if rng.random() < 0.5:                                                # a noise event, not a bed
        length = int(rng.uniform(0.15, 0.9) * n)
        x = _place(x[:length] * _adsr(length, rng), n, rng)
    return x


def impulse_train(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(n)
    rate = np.exp(rng.uniform(np.log(1.5), np.log(60)))
    if rng.random() < 0.5:
        times = np.arange(rng.uniform(0, 1 / rate), n / SR, 1 / rate)
    else:
        times = np.cumsum(rng.exponential(1 / rate, int(3 * rate * n / SR) + 2))
        times = times[times < n / SR]
    idx = (times * SR).astype(int)
    x[idx] = rng.uniform(0.3, 1.0, idx.size) * np.where(rng.random(idx.size) < 0.5, 1, -1)
    # each click excites a decaying resonance (or stays a bare click)
    if rng.random() < 0.8:
        length = int(SR * rng.uniform(0.005, 0.15))
        tt = np.arange(length) / SR
        freq = np.exp(rng.uniform(np.log(100), np.log(6000)))
        kernel = np.exp(-tt / rng.uniform(0.002, 0.05)) * np.sin(2 * np.pi * freq * tt)
        if rng.random() < 0.5:
            kernel += 0.5 * np.exp(-tt / 0.003) * rng.standard_normal(length)
        x = np.convolve(x, kernel)[:n]
    return _normalise(x)


def chirp(n: int, rng: np.random.Generator) -> np.ndarray:
    length = int(rng.uniform(0.1, 1.0) * n)
    t = np.arange(length) / SR
    f0, f1 = np.exp(rng.uniform(np.log(60), np.log(7000), 2))
    if rng.random() < 0.5:
        f_inst = f0 + (f1 - f0) * t / t[-1]
    else:
        f_inst = f0 * (f1 / f0) ** (t / t[-1])
    phase = 2 * np.pi * np.cumsum(f_inst) / SR
    x = np.sin(phase)
    if rng.random() < 0.4:                                                # harmonic sweep
        for k in range(2, 6):
            x += rng.uniform(0, 0.7) / k * np.sin(k * phase) * (f_inst * k < 7800)
    x *= _adsr(length, rng)
    return _place(_normalise(x), n, rng)


_GENERATORS = {"note": lambda n, rng: harmonic_note(n, rng)[0], "noise": noise_texture,
               "impulses": impulse_train, "chirp": chirp}


def synthetic_clip(n: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """(audio peak-normalised float32, source class, pitch bin or -1)."""
    source = int(rng.integers(0, 5))
    pitch = -1
    if source == 0:
        x, pitch = harmonic_note(n, rng)
    elif source == 4:
        kinds = rng.choice(list(_GENERATORS), size=int(rng.integers(2, 4)), replace=True)
        x = sum(_GENERATORS[k](n, rng) * rng.uniform(0.2, 1.0) for k in kinds)
    else:
        x = _GENERATORS[SOURCE_CLASSES[source]](n, rng)
    return _normalise(x).astype(np.float32), source, pitch


# --- augmentation ---------------------------------------------------------------------------------------

def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view: EQ tilt, random band limit, additive noise, gain (peak -40..0 dBFS)."""
    n = x.size
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    tilt = rng.uniform(-3, 3)                                              # dB per octave around 1 kHz
    gain_db = tilt * np.log2(f / 1000)
    if rng.random() < 0.5:                                                 # one peaking band +-6 dB
        centre = np.exp(rng.uniform(np.log(150), np.log(6000)))
        gain_db += rng.uniform(-6, 6) * np.exp(-0.5 * (np.log2(f / centre) / rng.uniform(0.3, 1.5)) ** 2)
    spec *= 10 ** (np.clip(gain_db, -18, 18) / 20)
    if rng.random() < 0.5:                                                 # band-limited recording
        cutoff = rng.uniform(3400, 7600)
        spec *= 1 / (1 + (f / cutoff) ** 24) ** 0.5
    if rng.random() < 0.2:                                                 # telephone-ish high-pass
        spec *= 1 / (1 + (rng.uniform(100, 300) / f) ** 8) ** 0.5
    y = np.fft.irfft(spec, n)
    y = _normalise(y)
    if rng.random() < 0.5:                                                 # background noise
        snr_db = rng.uniform(5, 40)
        noise = _normalise(_coloured_noise(n, rng, rng.uniform(0, 2)))
        y = y + noise * _rms(y) / _rms(noise) * 10 ** (-snr_db / 20)
        y = _normalise(y)
    return (y * 10 ** (rng.uniform(-40, 0) / 20)).astype(np.float32)


# --- speech with espeak-ng --------------------------------------------------------------------------------

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
               "oh", "won", "to", "too", "for", "fore", "ate", "nought", "naught", "ten")

# Common English words, hand-written; filtered below so no digit word or homophone can slip in.
_WORD_TEXT = """
apple table river mountain window garden yellow purple orange green black white brown happy angry
quiet simple little middle bottle button coffee kitchen pencil paper letter number money market
station doctor teacher student music cinema theatre holiday morning evening night summer winter
autumn spring monday friday sunday animal rabbit monkey tiger horse mouse snake eagle turtle dolphin
whale spider beetle flower forest desert island ocean valley meadow cloud thunder rain snow storm
wind fire water stone metal silver golden copper iron glass plastic wooden cotton leather bread
butter cheese pepper salad soup rice pasta pizza sugar honey lemon cherry banana grape melon potato
tomato carrot onion garlic chicken salmon mother father sister brother uncle aunt cousin baby child
people friend neighbour stranger captain pilot farmer driver singer writer painter dancer player
camera phone laptop screen keyboard printer engine rocket bicycle truck train plane boat ship bridge
tunnel tower castle palace church school office hospital library museum airport harbour village city
country planet galaxy circle square triangle corner edge surface shadow mirror picture story
question answer problem reason result method system machine power energy light sound voice noise
silence signal message record memory dream idea secret promise chance choice danger safety freedom
justice nature science history culture language grammar spelling reading writing drawing cooking
cleaning walking running jumping swimming climbing flying sailing driving talking laughing crying
sleeping waiting thinking learning listening watching playing working helping hoping wishing
believe remember forget imagine discover explore follow gather carry bring catch throw build break
open close begin finish start stop wonder wander borrow travel arrive leave enter return escape
always never often seldom maybe perhaps almost already again behind beside between beyond below
above under inside outside around across along among toward within without before after during
until because although unless whether while where when which whose what who how why yes no
hello goodbye please thanks sorry welcome excuse pardon cheers bravo okay alright indeed certainly
rather quite very really truly simply nearly hardly barely mostly mainly partly fully slowly
quickly softly loudly gently kindly badly nicely easily clearly surely bright dark heavy light
narrow wide shallow deep early late young old modern ancient famous strange common rare gentle
brave clever foolish honest lazy busy empty full rough smooth sharp blunt sweet bitter sour salty
warm cool cold hot dry wet clean dirty cheap expensive rich poor strong weak tall short thick thin
soft hard loud calm wild tame proud shy polite rude lucky careful useful helpful hungry thirsty
tired sleepy sick healthy alive dead ready able willing likely possible special normal usual
similar different important serious pleasant terrible wonderful beautiful ugly lovely awful
perfect certain general public private local national natural central final total equal major
minor single double triple extra basic simple complex magic marble pebble puzzle riddle jungle
candle saddle paddle tickle pickle bubble trouble double humble jumble rumble
blanket pillow curtain carpet ladder hammer shovel bucket basket pocket jacket helmet boots gloves
scarf hat shirt skirt dress coat sock shoe belt ring necklace watch clock calendar diary journal
nickel penny dollar euro pound ticket coupon receipt wallet purse
"""


def speech_words() -> list[str]:
    words = sorted(set(_WORD_TEXT.split()))
    banned = set(DIGIT_WORDS)
    words = [w for w in words if w not in banned and not any(d in w for d in DIGIT_WORDS[:10] + ("ten",))]
    return words


BASE_VOICES = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
               "en-029", "en-us-nyc")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt",
            "klatt2", "klatt3", "klatt4", "klatt6", "adam", "Alex", "Andy", "anika", "aunty", "belinda",
            "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "iven", "john",
            "linda", "max", "Michael", "Mike", "norbert", "paul", "quincy", "rob", "robert", "steph",
            "travis", "victor", "zac", "whisper", "whisperf")


def make_speakers(n_speakers: int, seed: int) -> list[dict]:
    """Fixed synthetic speakers: voice + variant + pitch (0-99) + speed (words per minute)."""
    rng = np.random.default_rng([seed, 7])
    combos = [(v, var) for v in BASE_VOICES for var in VARIANTS]
    picks = rng.choice(len(combos), size=n_speakers, replace=n_speakers > len(combos))
    speakers = []
    for i in picks:
        voice, variant = combos[i]
        speakers.append({"voice": voice + (f"+{variant}" if variant else ""),
                         "pitch": float(rng.uniform(15, 85)), "speed": float(rng.uniform(110, 210))})
    return speakers


def _synthesise(job: tuple) -> np.ndarray:
    """One espeak-ng utterance, trimmed, at 16 kHz int16."""
    import soundfile as sf
    import soxr

    voice, pitch, speed, word = job
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-w", tmp.name, "-v", voice, "-p", str(int(pitch)), "-s", str(int(speed)),
                        word], check=True, capture_output=True)
        audio, rate = sf.read(tmp.name, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SR:
        audio = soxr.resample(audio, rate, SR, quality="HQ")
    peak = np.abs(audio).max()
    if peak <= 0:
        return np.zeros(0, np.int16)
    loud = np.flatnonzero(np.abs(audio) > peak * 10 ** (-45 / 20))
    margin = int(0.02 * SR)
    audio = audio[max(0, loud[0] - margin): loud[-1] + margin] / peak * 0.9
    return np.round(audio * 32767).astype(np.int16)


def build_speech_cache(out_dir: str, n_utterances: int, n_speakers: int, seed: int, workers: int) -> None:
    words = speech_words()
    speakers = make_speakers(n_speakers, seed)
    rng = np.random.default_rng([seed, 11])
    # every (word, speaker) pair at most once, words and speakers balanced
    pairs = rng.permutation(len(words) * n_speakers)[:n_utterances]
    word_ids, speaker_ids = pairs % len(words), pairs // len(words)
    jobs = []
    for w, s in zip(word_ids, speaker_ids):
        sp = speakers[s]
        pitch = np.clip(sp["pitch"] + rng.uniform(-4, 4), 0, 99)
        speed = np.clip(sp["speed"] * rng.uniform(0.9, 1.1), 80, 260)
        jobs.append((sp["voice"], pitch, speed, words[w]))
    start = time.time()
    with ProcessPoolExecutor(workers) as pool:
        clips = list(pool.map(_synthesise, jobs, chunksize=64))
    keep = [i for i, c in enumerate(clips) if c.size >= int(0.1 * SR)]
    offsets = np.cumsum([0] + [clips[i].size for i in keep])
    os.makedirs(out_dir, exist_ok=True)
    np.save(os.path.join(out_dir, "audio_int16.npy"), np.concatenate([clips[i] for i in keep]))
    np.savez(os.path.join(out_dir, "index.npz"), offsets=offsets, word=word_ids[keep], speaker=speaker_ids[keep])
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump({"words": words, "speakers": speakers, "seed": seed, "n_requested": n_utterances,
                   "n_kept": len(keep), "sample_rate": SR, "seconds": time.time() - start,
                   "espeak_ng": subprocess.run(["espeak-ng", "--version"], capture_output=True,
                                               text=True).stdout.strip()}, f, indent=1)
    print(f"{len(keep)} utterances ({offsets[-1] / SR / 3600:.2f} h) from {len(words)} words x "
          f"{n_speakers} speakers in {time.time() - start:.0f} s -> {out_dir}")


def transcribe(words: list[str], voice: str) -> list[list[str]]:
    """espeak-ng's own phoneme transcription of each word (IPA, stress marks dropped), as that voice says it."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as tmp:
        tmp.write("".join(f"{w}.\n" for w in words))
        tmp.flush()
        out = subprocess.run(["espeak-ng", "-q", "--ipa", "--sep=_", "-v", voice, "-f", tmp.name],
                             check=True, capture_output=True, text=True).stdout
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if len(lines) != len(words):
        raise RuntimeError(f"espeak-ng gave {len(lines)} transcriptions for {len(words)} words")
    return [[p for p in line.replace("ˈ", "").replace("ˌ", "").split("_") if p] for line in lines]


def phoneme_targets(cache_dir: str, words: list[str], min_words: int = 5) -> dict:
    """Per base voice and word: its phonemes. Cached in cache_dir/phonemes.json (a pure function of the words).

    Returns {"inventory": [...], "by_voice": {voice: [[phoneme ids of word w] for w in words]}}; phonemes used
    by fewer than min_words words (under en-us) are dropped from the inventory."""
    path = os.path.join(cache_dir, "phonemes.json")
    if os.path.exists(path):
        with open(path) as f:
            table = json.load(f)
        if table.get("words") == words:
            return table
    raw = {voice: transcribe(words, voice) for voice in BASE_VOICES}
    counts = {}
    for voice in BASE_VOICES:
        for phones in raw[voice]:
            for p in set(phones):
                counts[p] = counts.get(p, 0) + 1
    inventory = sorted(p for p, c in counts.items() if c >= min_words * len(BASE_VOICES) // 2)
    index = {p: i for i, p in enumerate(inventory)}
    table = {"words": words, "inventory": inventory,
             "by_voice": {voice: [[index[p] for p in phones if p in index] for phones in raw[voice]]
                          for voice in BASE_VOICES}}
    with open(path + ".tmp", "w") as f:
        json.dump(table, f, ensure_ascii=False)
    os.replace(path + ".tmp", path)
    return table


class SpeechCache:
    """The cached utterances, memory-mapped: clip(i) -> float32 audio, word id, speaker id."""

    def __init__(self, cache_dir: str):
        self.audio = np.load(os.path.join(cache_dir, "audio_int16.npy"), mmap_mode="r")
        index = np.load(os.path.join(cache_dir, "index.npz"))
        self.offsets, self.word, self.speaker = index["offsets"], index["word"], index["speaker"]
        with open(os.path.join(cache_dir, "meta.json")) as f:
            self.meta = json.load(f)
        self.n_words, self.n_speakers = len(self.meta["words"]), len(self.meta["speakers"])
        # speaker factors: base voice (accent), voice variant, pitch and speed (standardised over speakers)
        voices = [sp["voice"].split("+")[0] for sp in self.meta["speakers"]]
        variants = [sp["voice"].split("+")[1] if "+" in sp["voice"] else "" for sp in self.meta["speakers"]]
        self.speaker_accent = np.array([BASE_VOICES.index(v) for v in voices])
        self.speaker_variant = np.array([VARIANTS.index(v) for v in variants])
        for key in ("pitch", "speed"):
            values = np.array([sp[key] for sp in self.meta["speakers"]], np.float64)
            setattr(self, f"speaker_{key}", ((values - values.mean()) / values.std()).astype(np.float32))
        phon = phoneme_targets(cache_dir, self.meta["words"])
        self.phonemes = phon["inventory"]
        self.word_phonemes = {v: phon["by_voice"][v] for v in BASE_VOICES}

    def __len__(self) -> int:
        return len(self.word)

    def clip(self, i: int) -> np.ndarray:
        return np.asarray(self.audio[self.offsets[i]:self.offsets[i + 1]], np.float32) / 32767.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="/work/trained/espeak-cache")
    parser.add_argument("--utterances", type=int, default=24000)
    parser.add_argument("--speakers", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    build_speech_cache(args.cache, args.utterances, args.speakers, args.seed, args.workers)


if __name__ == "__main__":
    main()
