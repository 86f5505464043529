"""Tiny random-weight models for the backend tests, built once per session and saved with
``save_pretrained`` (safetensors) so that they load back through the ModelManager the way a
user's model does. Built diffusers-test style (``get_dummy_components``); no downloads.

``IMAGENT_TEST_DEVICE`` (default cpu) picks the device; on cuda the manager runs fp16.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

DEVICE = os.environ.get("IMAGENT_TEST_DEVICE", "cpu")
POWERPAINT = ["P_ctxt", "P_obj", "P_shape"]


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def write_clip_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A byte-level CLIP BPE vocabulary (every byte, with and without ``</w>``) and a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(c, len(vocab))
    merges = ["#version: 0.2", "a b", "c a", "o g</w>", "ca t</w>", "d og</w>"]
    for tok in ("ab", "ca", "og</w>", "cat</w>", "dog</w>"):
        vocab.setdefault(tok, len(vocab))
    for tok in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(tok, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt"


def tiny_clip_text(folder: Path, *, extra_tokens: list[str] | None = None):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = write_clip_tokenizer_files(folder)
    tok = CLIPTokenizer(str(vocab), str(merges), model_max_length=32)
    if extra_tokens:
        tok.add_tokens(extra_tokens)
    torch.manual_seed(0)
    cfg = CLIPTextConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, hidden_size=32, intermediate_size=37,
                         num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tok),
                         max_position_embeddings=32, projection_dim=32)
    enc = CLIPTextModel(cfg)
    if extra_tokens:  # the PowerPaint way: new tokens, embeddings resized to the tokenizer
        enc.resize_token_embeddings(len(tok))
    return tok, enc


def tiny_sd(folder: Path, *, in_channels: int, kind: str, extra_tokens: list[str] | None = None) -> Path:
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline,
                           StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=32,
                                norm_num_groups=8, attention_head_dim=4,
                                in_channels=in_channels, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=32)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3, norm_num_groups=8,
                        mid_block_add_attention=False,
                        down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    tok, enc = tiny_clip_text(folder / "_tok", extra_tokens=extra_tokens)
    cls = {"inpaint": StableDiffusionInpaintPipeline, "text2image": StableDiffusionPipeline,
           "instruct": StableDiffusionInstructPix2PixPipeline}[kind]
    pipe = cls(vae=vae, text_encoder=enc, tokenizer=tok, unet=unet, scheduler=sched,
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def tiny_sdxl_inpaint(folder: Path) -> Path:
    """A tiny SDXL inpainting pipeline (diffusers' SDXL inpaint test components, in_channels=9):
    two CLIP text encoders (the second with projection) whose hidden sizes add up to the UNet's
    cross-attention dim, and ``text_time`` added conditioning sized for 6 time ids (no aesthetic
    score, as in diffusers/stable-diffusion-xl-1.0-inpainting-0.1)."""
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=32,
                                norm_num_groups=8, attention_head_dim=(2, 4),
                                use_linear_projection=True, in_channels=9, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                projection_class_embeddings_input_dim=6 * 8 + 32,
                                cross_attention_dim=64)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3, norm_num_groups=8,
                        mid_block_add_attention=False,
                        down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   steps_offset=1, timestep_spacing="leading")
    tok, enc = tiny_clip_text(folder / "_tok")
    tok2, enc1 = tiny_clip_text(folder / "_tok2")
    torch.manual_seed(1)
    enc2 = CLIPTextModelWithProjection(enc1.config)  # pooled, projected output (projection_dim 32)
    pipe = StableDiffusionXLInpaintPipeline(vae=vae, text_encoder=enc, text_encoder_2=enc2,
                                            tokenizer=tok, tokenizer_2=tok2, unet=unet,
                                            scheduler=sched, requires_aesthetics_score=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_bert_vocab(folder: Path, words: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words
    (folder / "vocab.txt").write_text("\n".join(toks) + "\n", encoding="utf-8")
    return folder / "vocab.txt"


def tiny_grounding_dino(folder: Path) -> Path:
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig,
                              GroundingDinoForObjectDetection, GroundingDinoImageProcessor,
                              GroundingDinoProcessor, SwinConfig)

    vocab = write_bert_vocab(folder / "_tok", ["a", "the", "cat", "dog", "red", "car", "flag"])
    tok = BertTokenizer(str(vocab))
    ip = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 128})
    proc = GroundingDinoProcessor(image_processor=ip, tokenizer=tok)
    torch.manual_seed(0)
    backbone = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          image_size=128, out_features=["stage2", "stage3", "stage4"],
                          out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(tok), hidden_size=8, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=16, max_position_embeddings=64)
    cfg = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32,
                              num_queries=6, encoder_layers=1, decoder_layers=2,
                              encoder_ffn_dim=16, decoder_ffn_dim=16, encoder_attention_heads=2,
                              decoder_attention_heads=2, num_feature_levels=4, max_text_len=32,
                              encoder_n_points=2, decoder_n_points=2)
    model = GroundingDinoForObjectDetection(cfg)
    model.save_pretrained(str(folder), safe_serialization=True)
    proc.save_pretrained(str(folder))
    return folder


def tiny_sam(folder: Path) -> Path:
    from transformers import (SamConfig, SamImageProcessor, SamMaskDecoderConfig, SamModel,
                              SamProcessor, SamPromptEncoderConfig, SamVisionConfig)

    vision = SamVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             image_size=64, patch_size=8, output_channels=16,
                             window_size=4, global_attn_indexes=[0], mlp_dim=32, num_pos_feats=8)
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    dec = SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               mlp_dim=32, iou_head_hidden_dim=16)
    torch.manual_seed(0)
    model = SamModel(SamConfig(vision_config=vision, prompt_encoder_config=prompt,
                               mask_decoder_config=dec))
    ip = SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                           mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})
    SamProcessor(image_processor=ip).save_pretrained(str(folder))
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def tiny_lama(path: Path) -> Path:
    """A TorchScript module with big-lama's call signature: (image, mask) -> image in [0, 1]."""

    class TinyLama(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            x = torch.cat([image * (1 - mask), mask], dim=1)
            return torch.sigmoid(self.conv(x))

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(TinyLama()).save(str(path))
    return path


def tiny_clip(folder: Path) -> Path:
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor,
                              CLIPTokenizer, CLIPTextConfig, CLIPVisionConfig)

    vocab, merges = write_clip_tokenizer_files(folder / "_tok")
    tok = CLIPTokenizer(str(vocab), str(merges), model_max_length=32)
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=CLIPTextConfig(hidden_size=16, intermediate_size=32,
                                                num_attention_heads=2, num_hidden_layers=1,
                                                vocab_size=len(tok), max_position_embeddings=32,
                                                bos_token_id=tok.bos_token_id,
                                                eos_token_id=tok.eos_token_id,
                                                pad_token_id=tok.pad_token_id),
                     vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32,
                                                    num_attention_heads=2, num_hidden_layers=1,
                                                    image_size=32, patch_size=8),
                     projection_dim=16)
    CLIPModel(cfg).save_pretrained(str(folder), safe_serialization=True)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                     crop_size={"height": 32, "width": 32}),
                  tokenizer=tok).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_inpaint(tiny_root) -> Path:
    return tiny_sd(tiny_root / "inpaint", in_channels=9, kind="inpaint")


@pytest.fixture(scope="session")
def tiny_powerpaint(tiny_root) -> Path:
    return tiny_sd(tiny_root / "powerpaint", in_channels=9, kind="inpaint", extra_tokens=POWERPAINT)


@pytest.fixture(scope="session")
def tiny_sdxl_inpaint_dir(tiny_root) -> Path:
    return tiny_sdxl_inpaint(tiny_root / "sdxl-inpaint")


@pytest.fixture(scope="session")
def tiny_text2image(tiny_root) -> Path:
    return tiny_sd(tiny_root / "t2i", in_channels=4, kind="text2image")


@pytest.fixture(scope="session")
def tiny_instruct(tiny_root) -> Path:
    return tiny_sd(tiny_root / "ip2p", in_channels=8, kind="instruct")


@pytest.fixture(scope="session")
def tiny_gdino(tiny_root) -> Path:
    return tiny_grounding_dino(tiny_root / "gdino")


@pytest.fixture(scope="session")
def tiny_sam_dir(tiny_root) -> Path:
    return tiny_sam(tiny_root / "sam")


@pytest.fixture(scope="session")
def tiny_lama_file(tiny_root) -> Path:
    return tiny_lama(tiny_root / "lama" / "big-lama.pt")


@pytest.fixture(scope="session")
def tiny_clip_dir(tiny_root) -> Path:
    return tiny_clip(tiny_root / "clip")


def make_manager(**models: Path | str):
    from imagent.tools.models import ModelManager

    return ModelManager({k: str(v) for k, v in models.items()}, device=DEVICE)


def big_image(width: int = 1500, height: int = 1000):
    """A 1500x1000 photo-like image (gradients + seeded noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([60 + 120 * x / width, 80 + 100 * y / height, 140 + 40 * np.sin(x / 23.0)], axis=2)
    base += rng.normal(0, 8, size=base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def corner_mask(width: int = 1500, height: int = 1000):
    """A soft-edged mask in the top-left corner (as build_mask with feather makes)."""
    from imagent.tools import masks as M

    m = M.box_mask((width, height), (40, 30, 260, 200))
    return M.feather(m, 6)


def assert_outside_unchanged(before, after, mask):
    import numpy as np

    a, b = np.asarray(before), np.asarray(after)
    assert a.shape == b.shape
    outside = mask == 0
    assert np.array_equal(a[outside], b[outside]), "pixels outside the mask changed"
    assert (a[mask >= 0.99] != b[mask >= 0.99]).any(), "nothing changed inside the mask"


class StopAt:
    """on_step recorder that sets ``cancel`` at step ``at``."""

    def __init__(self, at: int | None = None) -> None:
        import threading

        self.at = at
        self.steps: list[tuple[int, int]] = []
        self.cancel = threading.Event()

    def __call__(self, step: int, total: int) -> None:
        self.steps.append((step, total))
        if self.at is not None and step >= self.at:
            self.cancel.set()


def same(a, b) -> bool:
    import numpy as np

    return np.array_equal(np.asarray(a), np.asarray(b))


def small_case(seed: int = 0):
    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    m = np.zeros((96, 128), np.float32)
    m[20:60, 30:80] = 1.0
    return img, m
