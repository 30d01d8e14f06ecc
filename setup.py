"""beam-pusher: deploy ML demo apps to Hugging Face Spaces with Apache Beam and TFX."""

from setuptools import find_packages, setup

setup(
    name="beam-pusher",
    version="0.1.0",
    description="Deploy ML demo apps to Hugging Face Spaces from TFX pipelines and Apache Beam.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["beam_pusher", "beam_pusher.*"]),
    include_package_data=True,
    package_data={"beam_pusher": ["py.typed", "apps/**/*", "apps/*/*/*", "localhub/templates/*.html"]},
    install_requires=[
        "apache-beam>=2.47",
        "huggingface-hub>=1.0",
        "fsspec>=2023.5",
        # gitignore matching for exclude/include/keep and the templates' .gitignore files.
        "pathspec>=0.12,<2",
        "gcsfs",
        "pyyaml>=5.1",
        "jinja2>=3.0",  # the local Hub's web pages
        "packaging",  # the local Hub's builder reads requirement pins
    ],
    extras_require={
        # tfx_bsl imports dill, which apache-beam >= 2.72 no longer installs by itself.
        "tfx": ["tfx>=1.16,<1.18", "apache-beam[dill]"],
        # Dataflow: the runner and its GCS client, gs:// through fsspec, gcp-secret: references.
        "gcp": ["apache-beam[gcp]", "gcsfs", "google-cloud-secret-manager>=2"],
        # s3:// through fsspec; aws-secret: references (boto3).
        "s3": ["s3fs", "boto3"],
        "aws": ["s3fs", "boto3"],
        # kfp-pipeline-spec compiles pipelines for Vertex AI (KubeflowV2DagRunner); 0.3+ needs protobuf 4, tfx 1.16 has 3.
        # moto's server, a GCS emulator and the cloud clients test staging and secret references offline;
        # selenium drives Debian's chromium and chromedriver in the browser test.
        "test": [
            "pytest>=7", "pytest-timeout", "kfp-pipeline-spec>=0.2.2,<0.3", "apache-beam[gcp]",
            "google-cloud-secret-manager>=2", "moto[server]>=5", "boto3", "s3fs", "gcp-storage-emulator",
            "selenium>=4.10",
        ],
    },
    entry_points={"console_scripts": ["beam-pusher=beam_pusher.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
