"""Build script of the sst_ros ament_python package (also installable with pip)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sst_ros"

RUNTIME = [
    "numpy>=1.24",
    "scipy>=1.10",
    "pyyaml>=6",
    "soundfile>=0.12",
    "rosbags>=0.10",
    "zstandard>=0.19",  # zstd-compressed MCAP chunks when a crashed bag is recovered
]
ONNX = ["onnxruntime>=1.16"]
BASELINES_AND_PLOTS = ["pyroomacoustics>=0.7", "matplotlib>=3.6"]  # `sst evaluate`'s classical baselines, its plots
EVAL = [*ONNX, *BASELINES_AND_PLOTS]
TRAIN = [
    # 2.13.0 CPU is installed first by the set-up; this range must admit it so pip
    # never pulls a CUDA build.
    "torch>=2.3",
    *BASELINES_AND_PLOTS,
    "tqdm>=4.60",
]
EXPORT = ["torch>=2.3", "onnx>=1.16", "onnxscript>=0.5", *ONNX]  # torch's exporter needs onnx and onnxscript
DEV_TOOLS = ["pytest>=7", "pytest-timeout", "ruff", "mypy", "types-PyYAML", "mcap>=1.1", "mcap-ros2-support>=0.5"]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["models/*.pt", "models/*.onnx", "py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/config/arrays", glob("config/arrays/*.yaml")),
        (f"share/{PACKAGE}/config/sim", glob("config/sim/*.yaml")),
    ],
    python_requires=">=3.10",
    # A plain install is the robot's runtime, without torch: the tracker node, record_target and
    # `sst predict`, running an ONNX model with the `onnx` extra (by default the shipped
    # models/default.onnx, the export of models/default.pt).
    install_requires=RUNTIME,
    extras_require={
        "onnx": ONNX,  # run .onnx models (`sst export --onnx`): the robot install, `pip install sst_ros[onnx]`
        "eval": EVAL,  # `sst evaluate` of an .onnx model with baselines and plots, still without torch
        "train": TRAIN,  # simulate, train, adapt, evaluate with plots and baselines, run .pt checkpoints
        "export": EXPORT,  # `sst export --onnx`
        "dev": sorted(set(TRAIN + EXPORT)) + DEV_TOOLS,  # scripts/setup.sh: everything, plus the test tools
    },
    zip_safe=True,
    maintainer="sst_ros maintainers",
    maintainer_email="maintainers@sst-ros.dev",
    description="Sound source tracking for robots with unsupervised domain adaptation.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sst = sst_ros.cli:main",
            "publish_audio = sst_ros.ros.publish_audio:main",
            "record_target = sst_ros.ros.record_target:main",
            "tracker = sst_ros.ros.tracker_node:main",
        ],
    },
)
