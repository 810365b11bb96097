"""``finetunekit serve``: an OpenAI-compatible HTTP server for a locally fine-tuned model.

- :mod:`~finetunekit.serve.protocol`: the chat-completions wire format, validation, errors;
- :mod:`~finetunekit.serve.batcher`: the asyncio micro-batcher (concurrent requests, one batch);
- :mod:`~finetunekit.serve.engine`: a batch of requests answered by the ``local`` chat model;
- :mod:`~finetunekit.serve.app`: the FastAPI app; :mod:`~finetunekit.serve.server`: uvicorn.

FastAPI and uvicorn come with ``pip install 'finetunekit[serve]'``; nothing here is imported
by ``import finetunekit``.
"""
