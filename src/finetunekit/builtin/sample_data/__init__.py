"""Package data: the generated AmazonTitles-schema sample (see ``finetunekit.builtin.amazon.sample_data_path``)."""
