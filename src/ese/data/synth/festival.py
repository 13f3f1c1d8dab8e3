"""festival 2.5 driven by one Scheme script per speaker: one process synthesises all its sentences.

For each sentence the script runs ``(utt.synth (Utterance Text ...))``, saves the waveform as RIFF
and writes the Segment relation (phone name, end time in seconds) and the Word relation (name,
start of its first segment, ``word_end``): the exact alignment festival used to build the audio.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ese.errors import ToolMissingError

VOICE_DIRS = (Path("/usr/share/festival/voices"),)
HTS_VOICES = frozenset({"cmu_us_slt_arctic_hts"})
SEX = {"kal_diphone": "M", "ked_diphone": "M", "cmu_us_slt_arctic_hts": "F"}


@dataclass
class Rendered:
    """One synthesised utterance at the voice's native rate."""

    audio: np.ndarray  # (n,) float32
    sample_rate: int
    phones: list[tuple[str, float]]  # (radio phone, end time in s)
    words: list[tuple[str, float, float]]  # (word, start s, end s)


def festival_binary() -> str | None:
    return shutil.which("festival")


def voice_installed(voice: str) -> bool:
    return any(d.is_dir() and any(p.name == voice for p in d.glob("*/*")) for d in VOICE_DIRS)


def version() -> str:
    exe = festival_binary()
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def _voice_setup(voice: str, *, rate: float, pitch: float) -> str:
    """Scheme that selects ``voice`` and applies speaking-rate and pitch factors."""
    lines = [f"(voice_{voice})"]
    if voice in HTS_VOICES:
        # Duration_Stretch and int_lr_params do not reach hts_engine; its own options do:
        # -r speech speed factor, -fm additive half-tones
        semitones = 12.0 * np.log2(pitch)
        lines.append(f'(set! hts_engine_params (append hts_engine_params '
                     f'(list (list "-r" {rate:.4f}) (list "-fm" {semitones:.4f}))))')
    else:
        lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / rate:.4f})")
        lines.append(
            "(set! int_lr_params (list"
            f" (list 'target_f0_mean (* {pitch:.4f} (cadr (assoc 'target_f0_mean int_lr_params))))"
            f" (list 'target_f0_std (* {pitch:.4f} (cadr (assoc 'target_f0_std int_lr_params))))"
            " (assoc 'model_f0_mean int_lr_params) (assoc 'model_f0_std int_lr_params)))")
    return "\n".join(lines)


_PER_UTTERANCE = """
(set! u (utt.synth (Utterance Text "{text}")))
(utt.save.wave u "{wav}" 'riff)
(set! fd (fopen "{lab}" "w"))
(mapcar (lambda (s) (format fd "S %s %f\\n" (item.name s) (item.feat s 'end)))
        (utt.relation.items u 'Segment))
(mapcar (lambda (w) (format fd "W %s %f %f\\n" (item.name w)
          (item.feat (item.daughter1 (item.daughter1 (item.relation w 'SylStructure))) 'segment_start)
          (item.feat w 'word_end)))
        (utt.relation.items u 'Word))
(fclose fd)
"""


def synthesize(voice: str, texts: list[str], *, rate: float = 1.0, pitch: float = 1.0,
               timeout_s: float = 600.0) -> list[Rendered]:
    """Synthesise ``texts`` (plain words, no quotes) with one festival process."""
    exe = festival_binary()
    if exe is None:
        raise ToolMissingError("festival is not installed")
    with tempfile.TemporaryDirectory(prefix="ese-festival-") as tmp:
        tmpdir = Path(tmp)
        parts = [_voice_setup(voice, rate=rate, pitch=pitch)]
        for i, text in enumerate(texts):
            if '"' in text or "\\" in text:
                raise ValueError(f"sentence must not contain quotes or backslashes: {text!r}")
            parts.append(_PER_UTTERANCE.format(text=text, wav=tmpdir / f"{i}.wav",
                                               lab=tmpdir / f"{i}.lab"))
        script = tmpdir / "run.scm"
        script.write_text("\n".join(parts) + "\n", encoding="utf-8")
        proc = subprocess.run([exe, "-b", str(script)], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        out: list[Rendered] = []
        for i in range(len(texts)):
            wav, lab = tmpdir / f"{i}.wav", tmpdir / f"{i}.lab"
            if not wav.exists() or not lab.exists():
                raise RuntimeError(f"festival ({voice}) produced no output for sentence {i} "
                                   f"{texts[i]!r}: {proc.stderr.strip()[-500:]}")
            audio, sr = sf.read(wav, dtype="float32")
            phones, words = [], []
            for line in lab.read_text(encoding="utf-8").splitlines():
                fields = line.split()
                if fields[0] == "S":
                    phones.append((fields[1], float(fields[2])))
                elif fields[0] == "W":
                    words.append((fields[1].lower(), float(fields[2]), float(fields[3])))
            out.append(Rendered(audio, sr, phones, words))
        return out
