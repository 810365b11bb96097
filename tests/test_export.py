"""`finetunekit export`: a trained tiny adapter merged, written as GGUF, loaded back by
transformers (`gguf_file=`) with the same greedy answers; the GGUF's metadata checked against
the llama.cpp-written GGUF the default model ships as; the Ollama Modelfile; run resolution."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")

from finetunekit.backends.local.sources import SMOLLM2_135M_INSTRUCT, convert_gguf  # noqa: E402
from finetunekit.backends.local.tuned import resolve_target  # noqa: E402
from finetunekit.cli import main  # noqa: E402
from finetunekit.errors import ConfigError  # noqa: E402
from finetunekit.export.gguf_file import write_gguf  # noqa: E402
from finetunekit.registry import get_chat_model, get_trainer  # noqa: E402
from pipeline_support import make_tiny_model  # noqa: E402

FACTS = [(f"Tell me about the {c} {t} from Amazon.", f"This is what I know about the {c} {t}: it is {c}.")
         for c, t in [("Blue", "Kettle"), ("Red", "Lamp"), ("Green", "Mug"), ("Old", "Map")]]
QUESTIONS = [q for q, _ in FACTS] + ["Hi", "Describe the Blue Kettle.", "What is the Red Lamp?", "Tell me a story."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model and a local trainer's run directory with its trained LoRA adapter."""
    root = tmp_path_factory.mktemp("export")
    model = make_tiny_model(root)
    examples = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]
    get_trainer("local", model=str(model), epochs=4, batch_size=2, learning_rate=2e-2, device="cpu",
                max_length=96, warmup=0).train(examples, run_dir=root / "run")
    return model, root / "run"


@pytest.fixture(scope="module")
def exported(trained):
    model, run = trained
    assert main(["export", str(run), "--format", "gguf", "--name", "Tiny Tuned"]) == 0
    return run / "export"


def answers(model_dir, **options):
    return get_chat_model("local", model=str(model_dir), device="cpu", max_new_tokens=12, progress=False,
                          **options).answer(QUESTIONS)


def fields(path):
    reader = gguf.GGUFReader(str(path))
    return reader, {name: field for name, field in reader.fields.items()}


def test_gguf_loads_back_with_transformers_and_answers_as_the_merged_model(trained, exported, tmp_path):
    model, run = trained
    gguf_file = exported / "tiny-tuned-f16.gguf"
    assert gguf_file.is_file()
    convert_gguf(gguf_file, tmp_path / "from-gguf")  # AutoModelForCausalLM.from_pretrained(..., gguf_file=...)
    merged = answers(exported / "merged")
    assert answers(tmp_path / "from-gguf") == merged
    assert merged == answers(model, adapter=str(run / "adapter"))  # the merge is the adapted model
    assert merged != answers(model)  # and training changed it
    assert len(set(merged)) > 1


def test_gguf_metadata_matches_what_llama_cpp_writes_for_the_same_tokenizer(exported):
    try:
        shipped = SMOLLM2_135M_INSTRUCT.gguf_path()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    ours, mine = fields(exported / "tiny-tuned-f16.gguf")
    theirs, reference = fields(shipped)
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template",
                "general.architecture"):
        assert mine[key].contents() == reference[key].contents(), key
    assert mine["general.name"].contents() == "tiny-tuned"
    # the same tensor names (block 0 and the rest), norms in F32, 2-D weights in F16
    def names(reader):
        return {t.name for t in reader.tensors if not t.name.startswith("blk.") or t.name.startswith("blk.0.")}
    assert names(ours) == names(theirs)
    types = {t.name: t.tensor_type.name for t in ours.tensors}
    assert types["blk.0.attn_norm.weight"] == "F32" and types["blk.0.attn_q.weight"] == "F16"
    assert types["token_embd.weight"] == "F16"


def test_q8_0_and_bf16_weights(trained, tmp_path):
    model, _ = trained
    for outtype, expected in (("q8_0", "Q8_0"), ("bf16", "BF16")):
        path = write_gguf(model, tmp_path / f"m-{outtype}.gguf", outtype=outtype)
        reader, _ = fields(path)
        types = {t.name: t.tensor_type.name for t in reader.tensors}
        assert types["blk.1.ffn_down.weight"] == expected and types["output_norm.weight"] == "F32"


def test_the_modelfile_names_the_gguf_the_template_system_message_and_stop_token(exported):
    text = (exported / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./tiny-tuned-f16.gguf" in text
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert "<|im_start|>{{ .Role }}" in text and 'PARAMETER stop "<|im_end|>"' in text


def test_merged_export_loads_without_peft_or_finetunekit(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    _, run = trained
    assert main(["export", str(run / "adapter"), "--format", "merged", "--out", str(tmp_path / "out")]) == 0
    merged = tmp_path / "out" / "merged"
    assert not (merged / "adapter_config.json").exists()
    assert (merged / "tokenizer.json").is_file()
    assert type(AutoModelForCausalLM.from_pretrained(merged)).__name__ == "LlamaForCausalLM"


def test_architectures_the_converter_does_not_know_are_refused_with_the_way_out(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="convert_hf_to_gguf"):
        write_gguf(tmp_path, tmp_path / "x.gguf")
    assert not list(tmp_path.glob("*.gguf*"))


def test_targets_resolve_from_pipeline_runs_trainer_runs_adapters_and_models(trained, tmp_path):
    model, run = trained
    from_trainer = resolve_target(run)
    assert (from_trainer.model, from_trainer.adapter) == (str(model), str(run / "adapter"))
    pipeline_run = tmp_path / "pipeline-run"
    (pipeline_run / "train").mkdir(parents=True)
    (pipeline_run / "train" / "fine_tuned_model.json").write_text((run / "training.json").read_text())
    assert resolve_target(pipeline_run).adapter == str(run / "adapter")
    assert resolve_target(pipeline_run).label == "pipeline-run"
    assert resolve_target(run / "adapter").adapter == str(run / "adapter")
    assert resolve_target(model, adapter=run / "adapter").chat_options()["adapter"] == str(run / "adapter")
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    (hosted / "training.json").write_text(json.dumps({"backend": "openai", "base_model": "gpt-4o-mini",
                                                      "model": "ft:gpt-4o-mini:x"}))
    with pytest.raises(ConfigError, match="'openai' backend"):
        resolve_target(hosted)
    with pytest.raises(ConfigError, match="drop --adapter"):
        resolve_target(run, adapter=run / "adapter")
    with pytest.raises(ConfigError, match="neither a run directory"):
        resolve_target(tmp_path)
