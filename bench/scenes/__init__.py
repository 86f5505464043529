"""The project's scene suite: photos and synthetic scenes with hand-marked targets (scenes.py),
run and classified right / asked / wrong-but-done by ``bench/scene_suite.py``."""
