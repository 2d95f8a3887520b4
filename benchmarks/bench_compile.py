"""Prompt compilation throughput against a reference run of the same work in this process.

The reference is rendering the same template with ``str.replace`` for every variable (the
least a compiler can do); the ratio is compiler time / reference time per prompt, and the
target bounds the compiler's validation, schema building and hashing overhead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.compiler import ModelSettings, TemplateSpec, compile_prompt, template_context  # noqa: E402
from policies.policyfile import parse_policy_file  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
N = 2_000


def main() -> None:
    spec = parse_policy_file((REPO / "policies/example_policies/harassment.md").read_text(), version=1)
    body = (REPO / "policies/prompt_templates/sectioned_policy.txt").read_text()
    template = TemplateSpec("sectioned_policy", 1, body)
    settings = ModelSettings("sim-strong")

    start = time.perf_counter()
    for _ in range(N):
        text = body
        for name, value in template_context(spec).items():
            text = text.replace("{{ " + name + " }}", value)
    reference = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(N):
        compile_prompt(spec, template, settings)
    measured = time.perf_counter() - start

    per_second = N / measured
    ratio = measured / reference
    print(f"compiled {N} prompts in {measured:.3f} s; reference render {reference:.3f} s")
    print(f"BENCH prompt_compile {per_second:.0f} prompts/s ratio={ratio:.2f} target=5")


if __name__ == "__main__":
    main()
