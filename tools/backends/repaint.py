"""RePaint-style resampling for inpainting (Lugmayr et al. 2022), on any SD UNet.

A DDIM denoising loop of its own (the pipeline's scheduler config, DDIM stepping, which is
stateless and so can step the same timesteps again). Every step the known region (mask 0) is
replaced by the original latents noised to the current level. The steps are taken in blocks of
``jump_length``; after each block (but the last) the latents are re-noised back to the block's
start and the block is denoised again, ``resample_count`` times: the fill and its surroundings
harmonise. Works with 9-channel inpainting UNets (mask and masked-image latents concatenated)
and 4-channel text-to-image UNets.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from imagent.tools.backends._common import OnStep, check_cancel


def total_steps(num_inference_steps: int, jump_length: int, resample_count: int) -> int:
    n, j = int(num_inference_steps), max(1, int(jump_length))
    total, k = 0, 0
    while k < n:
        e = min(n, k + j)
        total += (e - k) * (1 + (int(resample_count) if e < n else 0))
        k = e
    return total


def encode_image(pipe, image: Image.Image):
    """The VAE latents (distribution mean, scaled) of an RGB image at its own size."""
    import torch

    device, dtype = pipe._execution_device, pipe.vae.dtype
    w, h = image.size
    x = pipe.image_processor.preprocess(image, height=h, width=w).to(device=device, dtype=dtype)
    with torch.no_grad():
        lat = pipe.vae.encode(x).latent_dist.mean
    return lat * pipe.vae.config.scaling_factor, x


def latent_mask(pipe, mask: np.ndarray, like):
    import torch

    h, w = like.shape[-2:]
    m = Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(m, np.float32) / 255.0)[None, None].to(like.device, like.dtype)


def repaint(pipe, image: Image.Image, mask: np.ndarray, *, prompt_embeds, negative_prompt_embeds,
            guidance_scale: float, num_inference_steps: int, generator, jump_length: int = 5,
            resample_count: int = 2, on_step: OnStep | None = None,
            cancel: threading.Event | None = None, step_offset: int = 0,
            total: int | None = None) -> Image.Image:
    """Inpaint ``image`` (already at the model's working size) where ``mask`` is 1."""
    import torch
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    device = pipe._execution_device
    dtype = pipe.unet.dtype
    sched = DDIMScheduler.from_config(pipe.scheduler.config)
    sched.set_timesteps(int(num_inference_steps), device=device)
    times = sched.timesteps
    n = len(times)
    total = total if total is not None else total_steps(n, jump_length, resample_count)
    ac = sched.alphas_cumprod.to(device=device, dtype=torch.float32)
    final = torch.as_tensor(sched.final_alpha_cumprod, device=device, dtype=torch.float32)

    def alpha(level: int):
        return ac[times[level]] if level < n else final

    with torch.no_grad():
        x0, pixels = encode_image(pipe, image)
        x0 = x0.to(dtype)
        m = latent_mask(pipe, mask, x0)
        extra = None
        if pipe.unet.config.in_channels == 9:
            keep = torch.from_numpy((np.asarray(mask) < 0.5).astype(np.float32))[None, None].to(
                pixels.device, pixels.dtype)
            masked_lat = pipe.vae.encode(pixels * keep).latent_dist.mean * pipe.vae.config.scaling_factor
            extra = torch.cat([(m >= 0.5).to(dtype), masked_lat.to(dtype)], dim=1)
        cfg = guidance_scale > 1.0
        embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if cfg else prompt_embeds

        def noise():
            return randn_tensor(x0.shape, generator=generator, device=device, dtype=dtype)

        def known(level: int):
            if level >= n:
                return x0
            return sched.add_noise(x0, noise(), times[level:level + 1])

        def eps(x, t):
            inp = torch.cat([x, x]) if cfg else x
            inp = sched.scale_model_input(inp, t)
            if extra is not None:
                inp = torch.cat([inp, torch.cat([extra, extra]) if cfg else extra], dim=1)
            out = pipe.unet(inp, t, encoder_hidden_states=embeds).sample
            if cfg:
                u, c = out.chunk(2)
                out = u + guidance_scale * (c - u)
            return out

        done = step_offset

        def step(x, k):
            nonlocal done
            x = sched.step(eps(x, times[k]), times[k], x).prev_sample
            x = known(k + 1) * (1 - m) + x * m
            done += 1
            if on_step is not None:
                on_step(done, total)
            check_cancel(cancel)
            return x

        x = noise() * sched.init_noise_sigma
        j, k = max(1, int(jump_length)), 0
        while k < n:
            e = min(n, k + j)
            for kk in range(k, e):
                x = step(x, kk)
            if e < n:
                for _ in range(int(resample_count)):
                    ratio = (alpha(k) / alpha(e)).to(dtype)
                    x = ratio.sqrt() * x + (1 - ratio).clamp(min=0).sqrt() * noise()
                    for kk in range(k, e):
                        x = step(x, kk)
            k = e
        decoded = pipe.vae.decode(x / pipe.vae.config.scaling_factor).sample
    return pipe.image_processor.postprocess(decoded, output_type="pil")[0]
