"""`face2anime serve`: the web page (Gradio) in front of `face2anime convert`'s own pipeline.

`engine`: the trained generators on offer (with their eval_gan numbers) and one uploaded picture through
`convert.run.convert_picture` (the command's detection, framing, stylising and paste-back), with every bad
upload answered by a message. `app`: the page, its queue and its temporary upload folder. docs/web.md.
Gradio is imported only by `app`, so `face2anime --help` and the engine's tests do not wait for it.
"""
