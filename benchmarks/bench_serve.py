"""Throughput and latency of `finetunekit serve`: 32 concurrent clients vs the same requests sent one by one.

Starts `finetunekit serve` in a subprocess (default: a tiny random Llama with the SmolLM2
tokenizer, built in a temporary folder; `--model` serves another model or run directory) and
sends chat completions with the openai SDK over 127.0.0.1, greedy, `max_tokens` fixed.
Baseline: the same number of requests sent sequentially by one client (each waits for the
previous answer, so every generate call holds one request). Each mode runs `--repeats` times;
the median run is reported, with the server's generate-call count for it.

    python benchmarks/bench_serve.py --requests 32 --max-tokens 32
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tiny_model(root: Path) -> Path:
    from local_fixtures import smollm2_tokenizer_dir, tiny_llama_dir

    return tiny_llama_dir(smollm2_tokenizer_dir(root / "tokenizer"), root / "model", init_range=0.05)


def start(model: str, max_batch: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "finetunekit.cli", "serve", model, "--port", "0", "--device", "cpu",
                                "--model-name", "bench", "--max-batch", str(max_batch)],
                               stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    if " at " not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, line.split(" at ")[1].strip()


def generate_calls(url: str) -> int:
    import httpx2

    return httpx2.get(url.removesuffix("/v1") + "/health").json()["generate_calls"]


def run(api, questions: list[str], clients: int, max_tokens: int, url: str) -> dict:
    def one(question: str) -> float:
        started = time.perf_counter()
        api.chat.completions.create(model="bench", messages=[{"role": "user", "content": question}],
                                    max_tokens=max_tokens, temperature=0)
        return time.perf_counter() - started

    calls = generate_calls(url)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = list(pool.map(one, questions))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {"seconds": round(seconds, 2), "requests_per_second": round(len(questions) / seconds, 2),
            "latency_mean_s": round(statistics.mean(latencies), 3), "latency_p50_s": round(latencies[len(latencies) // 2], 3),
            "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
            "generate_calls": generate_calls(url) - calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name/dir or run directory (default: a tiny random Llama)")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()

    import openai

    with tempfile.TemporaryDirectory() as tmp:
        model = opts.model or str(tiny_model(Path(tmp)))
        process, url = start(model, max_batch=opts.requests)
        try:
            api = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
            questions = [f"Tell me about product number {i} from Amazon." for i in range(opts.requests)]
            run(api, questions[:2], 1, opts.max_tokens, url)  # warm-up
            results = {}
            for label, clients in (("sequential", 1), ("concurrent", opts.requests)):
                runs = [run(api, questions, clients, opts.max_tokens, url) for _ in range(opts.repeats)]
                results[label] = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
                print(label, results[label], flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    speedup = results["concurrent"]["requests_per_second"] / results["sequential"]["requests_per_second"]
    print(json.dumps({"model": opts.model or "tiny random Llama (hidden 64, 2 layers, SmolLM2 tokenizer)",
                      "requests": opts.requests, "max_tokens": opts.max_tokens, **results,
                      "throughput_ratio_concurrent_vs_sequential": round(speedup, 2)}, indent=2))


if __name__ == "__main__":
    main()
