"""Model backends: the generative and detection models behind the tools.

Every module here imports torch / diffusers / transformers inside its functions only, so
``import imagent.tools.backends.inpaint`` is cheap and the embedded path never loads them.
Each entry function takes the ``ModelManager`` (``imagent.tools.models``) first, gets its model
through ``manager.get(role)`` and works on PIL images and float32 H x W masks:

- ``inpaint``: ``inpaint_remove``, ``inpaint_insert``, ``inpaint_shape``, ``inpaint_outpaint``
  (diffusers inpainting; PowerPaint task prompts when the tokenizer holds them; RePaint-style
  resampling as an option)
- ``blended``: ``blended_edit`` (Blended Latent Diffusion for plain text-to-image models)
- ``ip2p``: ``instruct_edit`` (InstructPix2Pix)
- ``lama``: ``lama_remove`` (TorchScript LaMa)
- ``grounding_dino``: ``ground`` (GroundingDINO -> Detections)
- ``sam``: ``segment`` (SAM masks from boxes / points)
- ``original_gdino`` / ``original_sam``: the original checkpoints (need torchvision)
- ``clip_rank``: ``clip_scores`` (rank candidates by CLIP similarity)

Progress: ``on_step(step, total)`` after every denoising step. Cancellation: when the
``cancel`` event is set the backend raises ``imagent.errors.Cancelled`` within one step.
"""

BACKEND_ROLES = {
    "inpaint": "inpaint", "blended": "text2image", "ip2p": "instruct", "lama": "lama",
    "grounding_dino": "grounding", "sam": "segmentation", "clip_rank": "clip",
}
