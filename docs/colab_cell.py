# Google Colab only: fetch the series and install what Colab lacks. The first code cell of
# every notebook downloads this file from the repository and runs it when it runs in Colab;
# anywhere else (your laptop, Binder, CI) that cell does nothing and this file is not used.
import os, sys
if "google.colab" in sys.modules:
    import subprocess
    REPO_DIR = "/content/lightgcn-from-scratch"
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1",
                        "https://github.com/lightgcn-from-scratch/lightgcn-from-scratch.git", REPO_DIR], check=True)
    with open(f"{REPO_DIR}/requirements.txt") as fh:  # the series' tested versions
        pins = [line.split()[0] for line in fh if line.startswith(("torch-geometric==", "pooch=="))]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *pins], check=True)
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)
    os.chdir(f"{REPO_DIR}/notebooks")
    print("Colab is ready:", *pins, "installed; working in", os.getcwd())
