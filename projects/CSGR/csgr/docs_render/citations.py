"""The paper of each registered distillation method: what it distils, a link and its BibTeX.

Keyed by the method's registry name; ``tests/docs_render/test_render_docs.py`` checks that every
registered method has an entry. Fields not known for certain (pages, DOIs) are left out rather
than guessed.
"""

from dataclasses import dataclass

__all__ = ["Paper", "PAPERS"]


@dataclass(frozen=True)
class Paper:
    """A method's paper.

    Attributes:
        distils: what the method distils, in a few words.
        short: authors and venue, e.g. "Yang et al., CVPR 2022".
        title: the paper's title.
        url: a link to the paper.
        bibtex: its BibTeX entry.
        reconstructed: the method is reconstructed from the abstract (no reference code).
    """

    distils: str
    short: str
    title: str
    url: str
    bibtex: str
    reconstructed: bool = False


PAPERS = {
    "CSGR": Paper(
        distils="FPN features: class prototypes + criss-cross relation",
        short="USTB, in Chinese with an English abstract",
        title="Category semantic and global relation distillation for object detection",
        url="",
        bibtex="""@misc{csgr,
  title = {目标检测模型的类别语义和全局关系蒸馏 (Category semantic and global relation
           distillation for object detection models)},
  note  = {In Chinese, with an English abstract. Corresponding authors: zhongguima@ustb.edu.cn,
           wangzj@ustb.edu.cn (University of Science and Technology Beijing). The copy this
           project has gives no author list, venue or year: complete them from the publisher}
}""",
    ),
    "FGD": Paper(
        distils="FPN features: focal (fore/background, attention) + global (GcBlock)",
        short="Yang et al., CVPR 2022",
        title="Focal and Global Knowledge Distillation for Detectors",
        url="https://arxiv.org/abs/2111.11837",
        bibtex="""@inproceedings{yang2022fgd,
  title     = {Focal and Global Knowledge Distillation for Detectors},
  author    = {Yang, Zhendong and Li, Zhe and Jiang, Xiaohu and Gong, Yuan and Yuan, Zehuan
               and Zhao, Danpei and Yuan, Chun},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2022},
  eprint    = {2111.11837},
  archivePrefix = {arXiv}
}""",
    ),
    "MSE": Paper(
        distils="FPN features: mean squared error (FitNet hints)",
        short="Romero et al., ICLR 2015",
        title="FitNets: Hints for Thin Deep Nets",
        url="https://arxiv.org/abs/1412.6550",
        bibtex="""@inproceedings{romero2015fitnets,
  title     = {FitNets: Hints for Thin Deep Nets},
  author    = {Romero, Adriana and Ballas, Nicolas and Kahou, Samira Ebrahimi
               and Chassang, Antoine and Gatta, Carlo and Bengio, Yoshua},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2015},
  eprint    = {1412.6550},
  archivePrefix = {arXiv}
}""",
    ),
    "PKD": Paper(
        distils="FPN features: Pearson correlation (per-channel standardised MSE)",
        short="Cao et al., NeurIPS 2022",
        title="PKD: General Distillation Framework for Object Detectors via Pearson "
        "Correlation Coefficient",
        url="https://arxiv.org/abs/2207.02039",
        bibtex="""@inproceedings{cao2022pkd,
  title     = {{PKD}: General Distillation Framework for Object Detectors via Pearson
               Correlation Coefficient},
  author    = {Cao, Weihan and Zhang, Yifan and Gao, Jianfei and Cheng, Anda and Cheng, Ke
               and Cheng, Jian},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2022},
  eprint    = {2207.02039},
  archivePrefix = {arXiv}
}""",
    ),
    "CWD": Paper(
        distils="FPN features: per-channel spatial softmax, KL",
        short="Shu et al., ICCV 2021",
        title="Channel-wise Knowledge Distillation for Dense Prediction",
        url="https://arxiv.org/abs/2011.13256",
        bibtex="""@inproceedings{shu2021cwd,
  title     = {Channel-wise Knowledge Distillation for Dense Prediction},
  author    = {Shu, Changyong and Liu, Yifan and Gao, Jianfei and Yan, Zheng and Shen, Chunhua},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2021},
  eprint    = {2011.13256},
  archivePrefix = {arXiv}
}""",
    ),
    "MGD": Paper(
        distils="FPN features: masked student map regenerates the teacher's",
        short="Yang et al., ECCV 2022",
        title="Masked Generative Distillation",
        url="https://arxiv.org/abs/2205.01529",
        bibtex="""@inproceedings{yang2022mgd,
  title     = {Masked Generative Distillation},
  author    = {Yang, Zhendong and Li, Zhe and Shao, Mingqi and Shi, Dachuan and Yuan, Zehuan
               and Yuan, Chun},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2022},
  eprint    = {2205.01529},
  archivePrefix = {arXiv}
}""",
    ),
    "PCD": Paper(
        distils="RetinaNet head: class scores, boxes, localisation quality",
        short="Song et al., Displays 2024",
        title="'Parallel-Circuitized' distillation for dense object detection",
        url="https://doi.org/10.1016/j.displa.2023.102587",
        bibtex="""@article{song2024pcd,
  title   = {`{Parallel-Circuitized}' distillation for dense object detection},
  author  = {Song, Yaoye and Zhang, Peng and Huang, Wei and Zha, Yufei and You, Tao
             and Zhang, Yanning},
  journal = {Displays},
  volume  = {81},
  pages   = {102587},
  year    = {2024},
  doi     = {10.1016/j.displa.2023.102587}
}""",
        reconstructed=True,
    ),
    "DKD": Paper(
        distils="ROI box-classifier logits: target / non-target KL",
        short="Zhao et al., CVPR 2022",
        title="Decoupled Knowledge Distillation",
        url="https://arxiv.org/abs/2203.08679",
        bibtex="""@inproceedings{zhao2022dkd,
  title     = {Decoupled Knowledge Distillation},
  author    = {Zhao, Borui and Cui, Quan and Song, Renjie and Qiu, Yiyu and Liang, Jiajun},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2022},
  eprint    = {2203.08679},
  archivePrefix = {arXiv}
}""",
    ),
    "IKD": Paper(
        distils="FPN features (resampling, attention, one-to-many alignment) + ROI logits",
        short="Yao et al., CMC 2025",
        title="An Improved Knowledge Distillation Algorithm and Its Application to Object "
        "Detection",
        url="",
        bibtex="""@article{yao2025ikd,
  title   = {An Improved Knowledge Distillation Algorithm and Its Application to Object
             Detection},
  author  = {Yao, Min and Liu, Guofeng and Zhang, Yaozu and Hu, Guangjie},
  journal = {Computers, Materials \\& Continua},
  pages   = {2189--2205},
  year    = {2025}
}""",
        reconstructed=True,
    ),
}
