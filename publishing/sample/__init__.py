"""Realistic sample input files of all four kinds (`disclosure sample --out DIR --entities N`).

The files follow the data contract (publishing.contract has its vocabulary) the way real
exports do: a GB18030 CSV from Windows Excel (penalties), a UTF-8-with-BOM CSV (credit marks), NDJSON
with English keys (return pledges) and an XLSX with a title row and a 合计 row (blacklist).
About 3.5 % of the rows carry messy-but-valid values the contract says must be accepted
(other date forms, lower-case or spaced USCCs, short district names or codes, amounts with
thousands separators and 元, decision numbers with [] or 【】, full-width digits), and about
0.5 % of the penalty facts mention a person's ID and mobile number (valid check digits) so
that masking is exercised on realistic text. Nothing generated is invalid: no 简易 cases, no
event date after `today`, no repeated natural key.

Speed and memory: an entity is a pure function of (seed, index) — its attributes come from
one keyed BLAKE2b digest of the index — so nothing is kept per entity and rows are written as
they are made. Record streams use random.Random sub-streams of the seed. One million entities
take well under two minutes on one core.

The package's modules, each with one job: codes (identification numbers and their check
characters), vocab (districts and the words names are made of), entities (the entity of an
index), formats (messy-but-valid value spellings), cases (penalty case templates) and generator
(the four files written in their formats and encodings).
"""

from publishing.sample.generator import FILES, generate

__all__ = ["FILES", "generate"]
