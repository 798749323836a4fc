# The built-in demo's inputs, made offline (artify/demo.py): a content clip with camera and object
# motion and audio, and a style video of three distinct painted scenes.


rule make_demo:
    output:
        content="resources/demo/content.mp4",
        style="resources/demo/style.mp4",
    log:
        "logs/make_demo/make_demo.log",
    benchmark:
        "benchmarks/make_demo/make_demo.tsv"
    conda:
        "../../envs/video.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "{ARTIFY} demo --content {output.content:q} --style {output.style:q} > {log:q} 2>&1"
