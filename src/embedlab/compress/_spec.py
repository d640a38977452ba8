"""The codec spec grammar: ``stage(+stage)*``, each stage ``name`` or ``name:argument``.

A spec is zero or more transforms, then at most one quantizer (float32 when none is named), then optionally
``rescore:M``. Examples: ``int8``, ``pca:256+int8``, ``binary:itq+rescore:10``, ``opq:48``, ``rabitq:2``.
Parsing and printing round-trip: ``str(parse_spec(text)) == text`` for every canonical spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embedlab.exceptions import ConfigurationError

__all__ = ["QUANTIZERS", "TRANSFORMS", "CodecSpec", "Stage", "parse_spec"]

#: Transform name -> what its argument is ("" when it takes none).
TRANSFORMS = {
    "pca": "dimensions kept",
    "matryoshka": "prefix dimensions kept",
    "rotate": "",
    "leanvec": "dimensions kept",
    "leanvec-ood": "dimensions kept",
    "tldr": "dimensions kept (learnt with torch, the deep extra)",
    "mrl": "prefix dimensions kept after a learnt Matryoshka adapter (torch, the deep extra)",
}
#: Quantizer name -> what its argument is; a leading "?" marks an optional argument.
QUANTIZERS = {
    "float32": "",
    "float16": "",
    "int8": "?central percentage of each dimension's range kept (default 100)",
    "int4": "?central percentage of each dimension's range kept (default 99)",
    "binary": "?sign, center or itq (default sign)",
    "pq": "sub-quantizers (8 bits each)",
    "opq": "sub-quantizers (8 bits each, after a learnt rotation)",
    "pqfs": "sub-quantizers (4 bits each, fast-scan)",
    "rabitq": "bits per dimension: 1, 2 or 4",
    "bebr": "BITSxLOOPS: loops of learnt residual binary codes (torch, the deep extra)",
}
#: The stages whose argument is a count (dimensions or sub-quantizers).
_COUNTS = {"pca", "matryoshka", "leanvec", "leanvec-ood", "tldr", "mrl", "pq", "opq", "pqfs"}
_STAGE = re.compile(r"^([a-z][a-z0-9-]*)(?::([A-Za-z0-9.]+))?$")


@dataclass(frozen=True)
class Stage:
    """One stage of a spec: a name and its argument as written (None when absent)."""

    name: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name}:{self.argument}"

    def int_argument(self, *, minimum: int = 1) -> int:
        """The argument as an integer of at least ``minimum``."""
        try:
            value = int(self.argument or "")
        except ValueError:
            value = None
        if value is None or value < minimum or str(value) != self.argument:
            raise ConfigurationError(f"'{self}': the argument must be an integer >= {minimum}.")
        return value


@dataclass(frozen=True)
class CodecSpec:
    """A parsed codec spec: transforms applied in order, one quantizer, and the rescoring multiplier.

    ``rescore`` is M in "shortlist M x k candidates from the codes, then rank them by exact scores"; None
    means the codes alone answer.
    """

    transforms: tuple[Stage, ...]
    quantizer: Stage | None
    rescore: int | None = None

    @property
    def quantizer_stage(self) -> Stage:
        """The quantizer, float32 when the spec names none."""
        return self.quantizer or Stage("float32")

    def __str__(self) -> str:
        stages = [str(stage) for stage in self.transforms]
        if self.quantizer is not None:
            stages.append(str(self.quantizer))
        if self.rescore is not None:
            stages.append(f"rescore:{self.rescore}")
        return "+".join(stages)

    @property
    def codes_spec(self) -> str:
        """The spec without its rescoring stage: what determines the codes."""
        return str(CodecSpec(self.transforms, self.quantizer))

    def with_rescore(self, rescore: int | None) -> CodecSpec:
        return CodecSpec(self.transforms, self.quantizer, rescore)


def _parse_stage(text: str, spec: str) -> Stage:
    match = _STAGE.match(text)
    if match is None:
        raise ConfigurationError(
            f"Codec spec {spec!r}: cannot read the stage {text!r}; write stages as name or name:argument joined "
            "by '+', for example 'pca:256+int8'."
        )
    return Stage(match.group(1), match.group(2))


def _check_arguments(stage: Stage) -> None:
    described = TRANSFORMS.get(stage.name, QUANTIZERS.get(stage.name))
    if described is None:
        return
    if described == "" and stage.argument is not None:
        raise ConfigurationError(f"'{stage}': {stage.name} takes no argument.")
    if described and not described.startswith("?") and stage.argument is None:
        raise ConfigurationError(f"'{stage}': {stage.name} needs an argument ({described}), e.g. '{stage.name}:N'.")
    if stage.name in _COUNTS:
        stage.int_argument(minimum=1)


def parse_spec(text: str) -> CodecSpec:
    """Parse a codec spec such as ``"pca:256+int8"`` or ``"binary+rescore:10"``.

    Raises
    ------
    ConfigurationError
        Naming the stage that is unknown, misplaced or missing its argument, and listing the known names.

    Examples
    --------
    >>> spec = parse_spec("pca:128+int8+rescore:5")
    >>> spec.transforms, spec.quantizer_stage.name, spec.rescore
    ((Stage(name='pca', argument='128'),), 'int8', 5)
    >>> str(spec)
    'pca:128+int8+rescore:5'
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("A codec spec must be a non-empty string such as 'int8' or 'pca:256+int8'.")
    stages = [_parse_stage(part.strip(), text) for part in text.strip().split("+")]
    rescore = None
    if stages[-1].name == "rescore":
        rescore = stages.pop().int_argument(minimum=1)
    transforms: list[Stage] = []
    quantizer: Stage | None = None
    for stage in stages:
        _check_arguments(stage)
        if stage.name in TRANSFORMS:
            if quantizer is not None:
                raise ConfigurationError(f"Codec spec {text!r}: the transform '{stage}' comes after the quantizer.")
            transforms.append(stage)
        elif stage.name in QUANTIZERS:
            if quantizer is not None:
                raise ConfigurationError(f"Codec spec {text!r}: two quantizers ('{quantizer}' and '{stage}').")
            quantizer = stage
        elif stage.name == "rescore":
            raise ConfigurationError(f"Codec spec {text!r}: 'rescore' must be the last stage.")
        else:
            raise ConfigurationError(
                f"Codec spec {text!r}: unknown stage '{stage.name}'. Transforms: {', '.join(TRANSFORMS)}; "
                f"quantizers: {', '.join(QUANTIZERS)}; and a final rescore:M."
            )
    if quantizer is None and not transforms and rescore is not None:
        raise ConfigurationError(f"Codec spec {text!r}: name a codec before 'rescore'.")
    return CodecSpec(tuple(transforms), quantizer, rescore)
