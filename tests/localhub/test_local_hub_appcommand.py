"""What the local Spaces runtime runs for a Space: ``appcommand.plan_launch`` over a Space's files."""

from __future__ import annotations

import pytest

from beam_pusher.localhub import appcommand
from beam_pusher.localhub.appenv import SpaceEnvError
from beam_pusher.localhub.builder import check_space


def _launch(sdk: str, files: dict[str, str]):
    def read(path: str) -> bytes | None:
        return files[path].encode() if path in files else None

    return appcommand.plan_launch(check_space(sdk, files.keys(), read), read)


@pytest.mark.parametrize("command", [
    'CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]',
    "CMD streamlit run app.py --server.port 8501",
    'ENTRYPOINT ["python", "-m", "streamlit"]\nCMD ["run", "app.py"]',
    'CMD ["sh", "-c", "streamlit run app.py --server.port=$PORT"]',
])
def test_a_docker_space_whose_dockerfile_runs_streamlit_runs_as_streamlit(command):
    readme = "---\nsdk: docker\napp_port: 8501\n---\n"
    dockerfile = f"FROM python:3.10\nCOPY . .\nRUN pip install -r requirements.txt\nEXPOSE 8501\n{command}\n"
    launch, reason = _launch("docker", {"README.md": readme, "Dockerfile": dockerfile, "app.py": "",
                                        "requirements.txt": "pillow\n"})
    assert reason is None and launch.kind == appcommand.STREAMLIT and launch.app_file == "app.py"
    assert launch.requirements == ("pillow", "streamlit")
    assert appcommand.app_command(launch, "/env/bin/python", 4321)[1:6] == ["-m", "streamlit", "run", "app.py",
                                                                            "--server.port"]


def test_another_dockerfile_stays_simulated_and_says_why():
    launch, reason = _launch("docker", {"README.md": "---\nsdk: docker\n---\n",
                                        "Dockerfile": 'FROM nginx\nCMD ["nginx", "-g", "daemon off;"]\n'})
    assert launch is None and "builds no Docker images" in reason and "nginx -g" in reason


def test_the_sdk_is_installed_unless_requirements_name_it_and_sdk_version_pins_it():
    readme = "---\nsdk: gradio\napp_file: app.py\n---\n"
    launch, _ = _launch("gradio", {"README.md": readme, "app.py": "", "requirements.txt": "numpy\nPillow\n"})
    assert launch.kind == appcommand.GRADIO and launch.requirements == ("gradio", "numpy", "pillow")
    launch, _ = _launch("gradio", {"README.md": readme, "app.py": "", "requirements.txt": "gradio>=4\n"})
    assert launch.requirements == ("gradio>=4",)
    pinned = "---\nsdk: gradio\nsdk_version: \"4.44.1\"\n---\n"
    launch, _ = _launch("gradio", {"README.md": pinned, "app.py": ""})
    assert launch.requirements == ("gradio==4.44.1",)
    launch, _ = _launch("static", {"README.md": "---\nsdk: static\n---\n", "index.html": ""})
    assert launch.kind == appcommand.STATIC and launch.requirements == ()


def test_an_option_line_in_requirements_is_refused_with_the_fix():
    with pytest.raises(SpaceEnvError, match=r"option line '-r other.txt' .* list plain requirements"):
        _launch("streamlit", {"README.md": "---\nsdk: streamlit\n---\n", "app.py": "",
                              "requirements.txt": "-r other.txt\n"})
