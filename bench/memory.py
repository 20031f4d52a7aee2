"""Peak memory (RSS) of a training run and of the app process serving predictions.

python -m bench.memory
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap

from bench.common import ROOT, UCF_ROOT, real_clips

CHILD = textwrap.dedent("""
    import json, resource, sys
    what = sys.argv[1]
    if what == "train":
        from vidclf.config import apply_overrides, load_config
        from vidclf.data.dataset import training_data
        from vidclf.training.loop import fit
        cfg = apply_overrides(load_config(), {{"data_root": {ucf!r}, "epochs": 1, "out_dir": sys.argv[2],
                                              "cache_dir": sys.argv[2] + "/cache", "backbone": sys.argv[3],
                                              "use_pretrained": False, "val_fraction": 0.9}})
        data = training_data(cfg)
        fit(cfg, data.train, data.val, data.classes, show_progress=False)
    else:
        import app
        from vidclf.catalog import find_models
        for m in find_models():
            p = app.POOL.get(m.path)
            for clip in json.loads(sys.argv[2]):
                p.predict(clip)
    print(json.dumps({{"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
""")


def run(*args: str) -> float:
    code = CHILD.format(ucf=str(UCF_ROOT))  # run in ROOT: `python -c` imports vidclf and app from there
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def main() -> None:
    clips = [str(p) for p in real_clips(10)]
    print("peak RSS (MB)")
    print(f"  app process, every shipped model loaded, 10 predictions each: {run('app', json.dumps(clips)):7.0f}")
    for backbone in ("custom", "resnet18"):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"  training 1 epoch ({backbone}, 10% of the clips, batch 4): {run('train', tmp, backbone):7.0f}")


if __name__ == "__main__":
    main()
