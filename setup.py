"""Build of bioscan-kmer: the pure C++ core as a static library, then the pybind11 module.

The core (csrc/) is compiled as its own library without Python's include directories, so
that a Python header in csrc/ fails the build instead of creeping in.

Environment switches (off by default, the wheel stays portable):
  BIOSCAN_KMER_NATIVE=1            add -march=native
  BIOSCAN_KMER_SANITIZE=address,undefined   build with those sanitizers (see tests/sanitize.sh)
"""
import glob
import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

flags = ["-std=c++17", "-O3", "-fvisibility=hidden", "-pthread"]
link = ["-pthread"]
if os.environ.get("BIOSCAN_KMER_NATIVE") == "1":
    flags.append("-march=native")
sanitize = os.environ.get("BIOSCAN_KMER_SANITIZE")
if sanitize:
    flags = [f for f in flags if f != "-O3"] + ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={sanitize}"]
    link.append(f"-fsanitize={sanitize}")

core = ("bioscan_core", {"sources": sorted(glob.glob("csrc/*.cpp")), "include_dirs": ["csrc"], "cflags": flags})


class BuildExt(build_ext):
    """Builds the core library first, so `python setup.py build_ext --inplace` works alone."""

    def run(self):
        self.run_command("build_clib")
        super().run()


ext = Pybind11Extension(
    "bioscan_kmer._core",
    sorted(glob.glob("python/*.cpp")),
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=[f for f in flags if f not in ("-std=c++17", "-O3")],
    extra_link_args=link,
    # Relink when the core changes, not only when the glue does.
    depends=sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/*.hpp")),
)

setup(libraries=[core], ext_modules=[ext], cmdclass={"build_ext": BuildExt})
