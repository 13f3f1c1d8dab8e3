"""The program image (``.ese``): one binary file, written atomically, validated before it is trusted.

Byte layout (all little-endian; docs/image-format.md is the full description)::

    header   64 bytes   struct "<8sHHIIIQQQQ" + padding: magic, format version, header size,
                        metadata length, section count, flags, file length, metadata offset,
                        section-table offset, data offset
    metadata            UTF-8 JSON: hardware, quant and model configs, formats, phones, provenance,
                        and (optional, absent in older images) features and normalisation
    table               n_sections records of SECTION_DTYPE (name, dtype, shape, offset, size, CRC-32)
    data                the sections, each starting on an 8-byte boundary
    trailer  32 bytes   SHA-256 of every byte before it

No pickle anywhere: arrays are raw bytes described by the table; the schedule is two numpy
structured arrays. The loader checks, in this order: size, magic, version, header fields, the
SHA-256, the metadata, the table (names, dtypes, offsets inside the data region, sizes equal to
shape x itemsize, CRC-32 of each section), then every array against the configs (shapes, pointer
ranges, indices past the matrix, integer widths). Every failure is an :class:`ImageError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ese.atomic import atomic_path
from ese.cell import cell_spec
from ese.compiler.encode import EncodedMatrix, EncodingError, word_dtype
from ese.compiler.program import LayerProgram, Program
from ese.compiler.roles import ROLES
from ese.compiler.schedule import Op, Schedule
from ese.compress.fixedpoint import FIXED_POINT_SPEC_VERSION, Format, QuantError
from ese.compress.qmodel import frontend_from_metadata, frontend_metadata, validate_qmodel
from ese.config import HardwareConfig, ModelConfig, QuantConfig, from_dict
from ese.errors import ConfigError, EseError, FeatureError

MAGIC = b"ESEPROG\x00"
FORMAT_VERSION = 2  # the newest; version 1 (LSTMP only, no model.cell) is still written and read
READ_VERSIONS = (1, 2)
HEADER_STRUCT = struct.Struct("<8sHHIIIQQQQ")  # 56 bytes, padded to HEADER_SIZE
HEADER_SIZE = 64
TRAILER_SIZE = 32  # SHA-256
ALIGN = 8
MAX_SECTIONS = 4096
SECTION_DTYPE = np.dtype([("name", "S48"), ("dtype", "S8"), ("ndim", "<u4"), ("crc32", "<u4"),
                          ("shape", "<u8", (4,)), ("offset", "<u8"), ("nbytes", "<u8")])
ALLOWED_DTYPES = {"<u1", "<u2", "<u4", "<u8", "<i1", "<i2", "<i4", "<i8", "|u1", "|i1"}
# schedule.ops rows: id, layer, role (index into ROLES), est_cycles, 3 dependency ops (-1 = none),
# their 3 step offsets; schedule.issue rows: phase (0 prologue, 1 steady), op id, step offset
OP_COLUMNS = 10
ISSUE_COLUMNS = 3


class ImageError(EseError):
    """A program image that cannot be trusted: corrupt, truncated, of another version, inconsistent."""


# ---- writing -------------------------------------------------------------------------------
def _int_array(a: np.ndarray, bits: int) -> np.ndarray:
    dt = "<i2" if bits <= 16 else "<i4" if bits <= 32 else "<i8"
    return np.ascontiguousarray(a, dtype=dt)


def _uint_for(max_value: int) -> str:
    return "<u2" if max_value < 1 << 16 else "<u4" if max_value < 1 << 32 else "<u8"


def program_sections(program: Program) -> dict[str, np.ndarray]:
    """Every array of the image by section name, in file order."""
    q = program.quant
    out: dict[str, np.ndarray] = {}
    for k, layer in enumerate(program.layers):
        for name, m in layer.matrices().items():
            top = int(m.entry_start[-1])
            out[f"layer{k}.{name}.ptr"] = np.ascontiguousarray(m.ptr, dtype=_uint_for(top))
            out[f"layer{k}.{name}.start"] = np.ascontiguousarray(m.entry_start, dtype=_uint_for(top))
            out[f"layer{k}.{name}.words"] = np.ascontiguousarray(m.words, dtype=np.dtype(m.words.dtype).newbyteorder("<"))
        out[f"layer{k}.bias"] = _int_array(layer.bias, q.act_bits)
        for name, vec in layer.vectors.items():
            out[f"layer{k}.{name}"] = _int_array(vec, q.act_bits)
    out["output.w"] = _int_array(program.w_out, q.weight_bits)
    out["output.b"] = _int_array(program.b_out, 64)
    for name in ("sigmoid", "tanh"):
        out[f"lut.{name}"] = _int_array(program.luts[name], q.act_bits)
    out["schedule.ops"], out["schedule.issue"] = _schedule_arrays(program.schedule)
    return out


def _schedule_arrays(s: Schedule) -> tuple[np.ndarray, np.ndarray]:
    ops = np.zeros((len(s.ops), OP_COLUMNS), dtype="<i4")
    for i, o in enumerate(s.ops):
        deps = list(o.deps) + [(-1, 0)] * (3 - len(o.deps))
        ops[i] = [o.id, o.layer, ROLES.index(o.role), o.est_cycles, *[d for d, _ in deps], *[dt for _, dt in deps]]
    items = [(0, op, dt) for op, dt in s.prologue] + [(1, op, dt) for op, dt in s.steady]
    return ops, np.array(items, dtype="<i4").reshape(-1, ISSUE_COLUMNS)


def _image_version(model: ModelConfig) -> int:
    """The format version an image of ``model`` is written in: 1 for an LSTMP (its bytes as
    always), 2 for any other cell (``ese.cell``), which the metadata's ``model.cell`` names."""
    return 1 if model.cell == "lstmp" else FORMAT_VERSION


def _model_metadata(model: ModelConfig) -> dict[str, Any]:
    """The model config as the image stores it: version 1 (LSTMP models only) without ``cell``
    (a reader fills in the default), version 2 with it."""
    out = dataclasses.asdict(model)
    if _image_version(model) == 1:
        del out["cell"]
    return out


def _metadata(program: Program) -> dict[str, Any]:
    return {
        "hardware": dataclasses.asdict(program.hardware),
        "quant": dataclasses.asdict(program.quant),
        "model": _model_metadata(program.model),
        "spec_version": program.spec_version,
        "output_delay": program.output_delay,
        "phones": list(program.phones),
        "layers": [{"formats": {k: f.to_list() for k, f in L.formats.items()},
                    "matrices": {n: {"rows": m.n_rows, "cols": m.n_cols} for n, m in L.matrices().items()}}
                   for L in program.layers],
        "output": {"formats": {k: f.to_list() for k, f in program.output_formats.items()}},
        "overlap_input": program.schedule.overlap_input,
        "source": program.source,
        **frontend_metadata(program.features, program.normalisation),
    }


def image_bytes(program: Program) -> bytes:
    """The complete image of ``program`` as bytes."""
    meta = json.dumps(_metadata(program), sort_keys=True).encode("utf-8")
    sections = program_sections(program)
    meta_off = HEADER_SIZE
    table_off = _aligned(meta_off + len(meta))
    data_off = _aligned(table_off + len(sections) * SECTION_DTYPE.itemsize)
    table = np.zeros(len(sections), dtype=SECTION_DTYPE)
    blobs, pos = [], data_off
    for i, (name, arr) in enumerate(sections.items()):
        raw = arr.tobytes()
        shape = list(arr.shape) + [0] * (4 - arr.ndim)
        table[i] = (name.encode(), arr.dtype.str.encode(), arr.ndim, zlib.crc32(raw), shape, pos, len(raw))
        blobs.append((pos, raw))
        pos = _aligned(pos + len(raw))
    file_len = pos + TRAILER_SIZE
    buf = bytearray(file_len - TRAILER_SIZE)
    HEADER_STRUCT.pack_into(buf, 0, MAGIC, _image_version(program.model), HEADER_SIZE, len(meta), len(sections), 0,
                            file_len, meta_off, table_off, data_off)
    buf[meta_off:meta_off + len(meta)] = meta
    buf[table_off:table_off + table.nbytes] = table.tobytes()
    for off, raw in blobs:
        buf[off:off + len(raw)] = raw
    return bytes(buf) + hashlib.sha256(buf).digest()


def save_program(path: str | Path, program: Program) -> int:
    """Write the image atomically; returns its size in bytes."""
    data = image_bytes(program)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return len(data)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ---- reading -------------------------------------------------------------------------------
def load_program(path: str | Path) -> Program:
    """Read and validate an image file (ImageError on anything unexpected)."""
    return load_image(path)[1]


def load_image(path: str | Path) -> tuple[dict[str, int], Program]:
    """(header, program) of an image file, read and validated once (``ese inspect`` shows both)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"program image {str(path)!r} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"program image {str(path)!r} is unreadable ({exc.strerror})") from None
    return _parse(data, str(path))


def parse_image(data: bytes, *, where: str = "the image") -> Program:
    """Validate and decode image bytes (see the module docstring for the order of checks)."""
    return _parse(data, where)[1]


def _parse(data: bytes, where: str) -> tuple[dict[str, int], Program]:
    header = read_header(data, where)
    sections = _read_sections(data, header, where)
    try:
        meta = json.loads(data[header["meta_offset"]:header["meta_offset"] + header["meta_length"]].decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
        program = _build_program(meta, sections)
        if header["version"] != _image_version(program.model) or ("cell" in meta["model"]) != (header["version"] > 1):
            raise ImageError(f"a version-{header['version']} image cannot hold a {program.model.cell!r} model "
                             f"(version 1: LSTMP without model.cell; version 2: model.cell names the cell)")
        return header, program
    except ImageError as exc:
        raise ImageError(f"{where}: {exc}") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            ConfigError, QuantError, EncodingError, FeatureError) as exc:
        raise ImageError(f"{where} is inconsistent: {type(exc).__name__}: {exc}") from None


def read_header(data: bytes, where: str = "the image") -> dict[str, int]:
    """The fixed header, checked against the file's real size and its SHA-256 trailer."""
    if len(data) < HEADER_SIZE + TRAILER_SIZE:
        raise ImageError(f"{where} is truncated ({len(data)} bytes; an image has at least "
                         f"{HEADER_SIZE + TRAILER_SIZE})")
    magic, version, hsize, meta_len, n_sec, flags, file_len, meta_off, table_off, data_off = \
        HEADER_STRUCT.unpack_from(data, 0)
    if magic != MAGIC:
        raise ImageError(f"{where} is not an ese program image (magic {magic!r}, expected {MAGIC!r})")
    if version not in READ_VERSIONS:
        raise ImageError(f"{where} has image format version {version}; this ese reads versions "
                         f"{', '.join(map(str, READ_VERSIONS))}: recompile it with ese compile")
    if file_len != len(data):
        raise ImageError(f"{where} is truncated or padded: the header says {file_len} bytes, "
                         f"the file has {len(data)}")
    digest = hashlib.sha256(memoryview(data)[:len(data) - TRAILER_SIZE]).digest()
    if digest != data[len(data) - TRAILER_SIZE:]:
        raise ImageError(f"{where} fails its SHA-256 checksum: the file is corrupt")
    body_end = len(data) - TRAILER_SIZE
    if hsize != HEADER_SIZE or flags != 0 or not 0 < n_sec <= MAX_SECTIONS:
        raise ImageError(f"{where} has a malformed header (header size {hsize}, flags {flags}, {n_sec} sections)")
    table_end = table_off + n_sec * SECTION_DTYPE.itemsize
    if not (meta_off == HEADER_SIZE and meta_off + meta_len <= table_off and table_end <= data_off <= body_end):
        raise ImageError(f"{where}: header regions overlap or lie outside the file "
                         f"(metadata {meta_off}+{meta_len}, table {table_off}, data {data_off}, end {body_end})")
    return {"version": version, "meta_offset": meta_off, "meta_length": meta_len, "n_sections": n_sec,
            "table_offset": table_off, "data_offset": data_off, "body_end": body_end, "file_length": file_len}


def _read_sections(data: bytes, h: dict[str, int], where: str) -> dict[str, np.ndarray]:
    table = np.frombuffer(data, dtype=SECTION_DTYPE, count=h["n_sections"], offset=h["table_offset"])
    out: dict[str, np.ndarray] = {}
    for rec in table:
        try:
            name, dt = rec["name"].decode("ascii"), rec["dtype"].decode("ascii")
        except UnicodeDecodeError:
            raise ImageError(f"{where}: a section name or dtype is not ASCII") from None
        if name in out or not name:
            raise ImageError(f"{where}: section {name!r} is empty-named or repeated")
        if dt not in ALLOWED_DTYPES:
            raise ImageError(f"{where}: section {name!r} has dtype {dt!r}; allowed are little-endian integers")
        ndim = int(rec["ndim"])
        if not 1 <= ndim <= 4 or np.any(rec["shape"][ndim:] != 0):
            raise ImageError(f"{where}: section {name!r} has a malformed shape")
        shape = tuple(int(s) for s in rec["shape"][:ndim])
        itemsize = np.dtype(dt).itemsize
        count = int(np.prod(shape, dtype=object))
        off, nbytes = int(rec["offset"]), int(rec["nbytes"])
        if count * itemsize != nbytes:
            raise ImageError(f"{where}: section {name!r} holds {nbytes} bytes, its shape {shape} needs "
                             f"{count * itemsize}")
        if off < h["data_offset"] or off % ALIGN or off + nbytes > h["body_end"]:
            raise ImageError(f"{where}: section {name!r} lies outside the data region")
        raw = data[off:off + nbytes]
        if zlib.crc32(raw) != int(rec["crc32"]):
            raise ImageError(f"{where}: section {name!r} fails its CRC-32")
        out[name] = np.frombuffer(raw, dtype=dt).reshape(shape)
    return out


def _build_program(meta: dict[str, Any], sec: dict[str, np.ndarray]) -> Program:
    hw = from_dict(HardwareConfig, meta["hardware"])
    quant = from_dict(QuantConfig, meta["quant"])
    model = from_dict(ModelConfig, meta["model"])
    if meta["spec_version"] != FIXED_POINT_SPEC_VERSION:
        raise ImageError(f"fixed-point spec version {meta['spec_version']!r}; this ese implements "
                         f"{FIXED_POINT_SPEC_VERSION}")
    if len(meta["layers"]) != model.layers:
        raise ImageError(f"metadata lists {len(meta['layers'])} layers, the model config {model.layers}")

    def take(name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in sec:
            raise ImageError(f"section {name!r} is missing")
        arr = sec[name]
        if shape is not None and arr.shape != shape:
            raise ImageError(f"section {name!r} has shape {arr.shape}, the configuration needs {shape}")
        return arr

    H, P, C = model.hidden, model.proj, model.num_classes
    cell = cell_spec(model)
    layers = []
    for k, raw in enumerate(meta["layers"]):
        D = model.input_dim if k == 0 else P
        mats = {}
        for name in cell.matrix_names:
            R, K = cell.matrix_shape(name, H, P, D)
            words = take(f"layer{k}.{name}.words")
            if words.ndim != 1 or words.dtype != np.dtype(word_dtype(hw.index_bits, quant.weight_bits)).newbyteorder("<"):
                raise ImageError(f"section 'layer{k}.{name}.words' has dtype {words.dtype}, expected "
                                 f"{np.dtype(word_dtype(hw.index_bits, quant.weight_bits))}")
            m = EncodedMatrix(f"layer{k}.{name}", R, K, hw.pes, hw.index_bits, quant.weight_bits,
                              take(f"layer{k}.{name}.ptr", (hw.pes, K + 1)).astype(np.int64),
                              take(f"layer{k}.{name}.start", (hw.pes + 1,)).astype(np.int64),
                              words.astype(word_dtype(hw.index_bits, quant.weight_bits)), cell.name)
            m.validate()
            mats[name] = m
        vectors = {n: take(f"layer{k}.{n}", cell.vector_shape(n, H)).astype(np.int64)
                   for n in cell.vector_names(model)}
        formats = {s: Format(int(v[0]), int(v[1])) for s, v in raw["formats"].items()}
        bias = vectors.pop("bias")
        layers.append(LayerProgram(mats, bias, vectors, formats, H))
    luts = {n: take(f"lut.{n}", (1 << quant.lut_index_bits,)).astype(np.int64) for n in ("sigmoid", "tanh")}
    schedule = _schedule_from(take("schedule.ops"), take("schedule.issue"), len(layers), bool(meta["overlap_input"]),
                              len(cell.roles), cell.matrix_of_role)
    prog = Program(hardware=hw, quant=quant, model=model, output_delay=int(meta["output_delay"]), layers=layers,
                   w_out=take("output.w", (C, P)).astype(np.int64), b_out=take("output.b", (C,)).astype(np.int64),
                   output_formats={s: Format(int(v[0]), int(v[1])) for s, v in meta["output"]["formats"].items()},
                   luts=luts, schedule=schedule, phones=[str(p) for p in meta["phones"]],
                   source=dict(meta["source"]), spec_version=int(meta["spec_version"]),
                   **frontend_from_metadata(meta))
    validate_qmodel(prog.to_qmodel(), where="the image's model")  # widths, formats, LUT sizes
    return prog


def _schedule_from(ops: np.ndarray, issue: np.ndarray, n_layers: int, overlap: bool,
                   ops_per_layer: int, matrix_of_role) -> Schedule:
    n = len(ops)
    if ops.ndim != 2 or ops.shape[1] != OP_COLUMNS or issue.ndim != 2 or issue.shape[1] != ISSUE_COLUMNS:
        raise ImageError("schedule sections have the wrong number of columns")
    if n != ops_per_layer * n_layers:
        raise ImageError(f"schedule has {n} ops for {n_layers} layers")
    parsed = []
    for i, rec in enumerate(ops.astype(np.int64).tolist()):
        op_id, layer, role, est = rec[:4]
        if op_id != i or not 0 <= role < len(ROLES) or not 0 <= layer < n_layers or est < 0:
            raise ImageError(f"schedule op {i} is malformed")
        deps = tuple((d, dt) for d, dt in zip(rec[4:7], rec[7:10]) if d >= 0)
        if any(d >= n or dt not in (0, -1) for d, dt in deps):
            raise ImageError(f"schedule op {i} depends on an op that does not exist")
        parsed.append(Op(i, layer, ROLES[role], deps, est, matrix_of_role(ROLES[role])))
    items = [tuple(r) for r in issue.astype(np.int64).tolist()]
    if any(ph not in (0, 1) or not 0 <= op < n or parsed[op].kind != "spmv" or dt not in (0, 1) for ph, op, dt in items):
        raise ImageError("schedule issue order names an unknown op or step")
    return Schedule(tuple(parsed), tuple((op, dt) for ph, op, dt in items if ph == 0),
                    tuple((op, dt) for ph, op, dt in items if ph == 1), overlap)
