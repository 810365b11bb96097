"""One-shot GPU check: the GPU-marked tests, then training and generation throughput on the GPU
against the CPU figures recorded in docs/benchmarks.md; writes every figure to a JSON file.

    python benchmarks/gpu_check.py --out gpu_check.json          # on a CUDA machine, < 8 minutes
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu.json  # anywhere: the tiny random model on
                                                                  # CPU, a few steps (proves it runs)

On the GPU it trains the default model (SmolLM2-135M-Instruct, the bundled GGUF) with LoRA on the
same 48 shipped-sample examples as ``bench_train.py`` (batch 8, max_length 512), in bfloat16
(``dtype``/``bf16`` auto) and, when bitsandbytes is installed, as QLoRA (4-bit, gradient
checkpointing); then the base model answers 64 questions (batch 16, 64 new tokens, greedy), as
``bench_generate.py`` does. Tokens/s count real (non-padding) training tokens and generated
answer tokens. Each figure is put beside its CPU baseline; the ratio is GPU / CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from local_sample import amazon_examples, load_rows, pick  # noqa: E402

#: CPU figures from docs/benchmarks.md (2-core AMD EPYC, torch 2.13 CPU, SmolLM2-135M-Instruct).
CPU_BASELINES = {
    # "Training throughput": bench_train.py --rows 48 --repeats 2, max_length 512, fp32, local trainer
    "train_fp32_tokens_per_second": 174.3,
    # "Sizing the end-to-end example": bf16 autocast on the CPU (avx512_bf16), 48 rows, batch 8
    "train_bf16_tokens_per_second": 320.0,
    # "Generation throughput": bench_generate.py --questions 16 --max-new-tokens 64, batch 16
    "generate_tokens_per_second": 146.5,
}


def run_gpu_tests(timeout: int) -> dict:
    """``pytest -m gpu`` on tests/test_gpu.py in a subprocess; its counts and exit status."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rA", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_gpu.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    lines = result.stdout.strip().splitlines()
    outcomes = [line.split(" ", 1) for line in lines if line.startswith(("PASSED ", "FAILED ", "SKIPPED ", "ERROR "))]
    return {
        "exit_status": result.returncode,  # 0: all passed; 5: none collected
        "summary": lines[-1] if lines else "",
        "tests": {name: status for status, name in outcomes},
        "seconds": round(time.perf_counter() - started, 1),
    }


def environment() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "cuda_bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None,
        "flash_attn": importlib.util.find_spec("flash_attn") is not None,
    }


def train_throughput(model: str, examples: list[dict], run_dir: Path, **options) -> dict:
    """Train once; tokens/s as the local trainer reports it (real tokens x epochs / seconds)."""
    import torch

    import finetunekit as ftk

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = ftk.get_trainer("local", model=model, batch_size=8, max_length=512, learning_rate=2e-3,
                              logging_steps=5, save_total_limit=1, seed=0, **options)
    tuned = trainer.train(examples, run_dir=run_dir)
    details = tuned.details
    return {
        "options": options,
        "device": details["device"],
        "steps": details["global_step"],
        "seconds": details["train_seconds"],
        "tokens_per_second": details["tokens_per_second"],
        "final_loss": details["train_loss"],
        "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
    }


def generate_throughput(model: str, questions: list[str], max_new_tokens: int, **options) -> dict:
    """Answer ``questions`` (batch 16, greedy) after one warm-up batch; answer tokens per second."""
    import finetunekit as ftk

    chat = ftk.get_chat_model("local", model=model, batch_size=16, max_new_tokens=max_new_tokens, progress=False, **options)
    chat.answer(questions[:16])  # load and warm up (CUDA kernels, caches)
    started = time.perf_counter()
    answers = chat.answer(questions)
    seconds = time.perf_counter() - started
    tokenizer = chat.loaded.tokenizer
    tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers)  # + end of turn
    return {"options": options, "device": chat.loaded.device, "questions": len(questions), "answer_tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_second": round(tokens / seconds, 1)}


def tiny_model(root: Path) -> str:
    """The tests' tiny random Llama with the SmolLM2 tokenizer (for --dry-run)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir

    return str(tiny_llama_dir(smollm2_tokenizer_dir(root / "tokenizer"), root / "model"))


def with_ratio(figure: dict, baseline: str) -> dict:
    cpu = CPU_BASELINES[baseline]
    return {**figure, "cpu_baseline": baseline, "cpu_tokens_per_second": cpu,
            "ratio_vs_cpu": round(figure["tokens_per_second"] / cpu, 2) if figure.get("tokens_per_second") else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json", help="where the JSON of figures goes")
    parser.add_argument("--dry-run", action="store_true", help="tiny random model on the CPU, a few steps: proves the script runs")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--test-timeout", type=int, default=240)
    opts = parser.parse_args()

    import torch

    if not opts.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or use --dry-run to check the script on CPU")
    started = time.perf_counter()
    figures: dict = {"dry_run": opts.dry_run, "environment": environment(), "cpu_baselines": CPU_BASELINES}
    print("environment:", json.dumps(figures["environment"]), flush=True)
    figures["gpu_tests"] = run_gpu_tests(opts.test_timeout)
    print("gpu tests:", figures["gpu_tests"]["summary"], flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        rows = pick(load_rows(), 48 if not opts.dry_run else 8)
        examples = amazon_examples(rows)
        questions = [e["messages"][0]["content"] for e in amazon_examples(pick(load_rows(), opts.questions, seed=1))]
        model, device = opts.model, "cuda"
        epochs, max_new_tokens = opts.epochs, opts.max_new_tokens
        if opts.dry_run:
            model, device, epochs, max_new_tokens, questions = tiny_model(work / "tiny"), "cpu", 1, 4, questions[:20]
        runs = {"lora_bf16": {"dtype": "auto", "bf16": "auto"}}
        if device == "cuda" and figures["environment"]["bitsandbytes"]:
            runs["qlora_4bit"] = {"dtype": "auto", "bf16": "auto", "load_in_4bit": True, "gradient_checkpointing": True}
        figures["train"] = {}
        for name, options in runs.items():
            figure = train_throughput(model, examples, work / name, device=device, epochs=epochs, **options)
            figures["train"][name] = with_ratio(figure, "train_bf16_tokens_per_second")
            print(f"train {name}:", json.dumps(figures["train"][name]), flush=True)
        figures["generate"] = {}
        for name, options in {"fp32": {"dtype": "float32"}, "bf16": {"dtype": "auto"}}.items():
            figure = generate_throughput(model, questions, max_new_tokens, device=device, **options)
            figures["generate"][name] = with_ratio(figure, "generate_tokens_per_second")
            print(f"generate {name}:", json.dumps(figures["generate"][name]), flush=True)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    Path(opts.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {opts.out} ({figures['seconds']} s)")


if __name__ == "__main__":
    main()
