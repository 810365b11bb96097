"""Package data: the generated AmazonTitles-schema sample (see ``finetunekit.data.sample_data_path``)."""
