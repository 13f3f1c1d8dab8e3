"""The standard TIMIT evaluation speaker lists.

Core test: the 24 speakers (2 male, 1 female per dialect region) of the TIMIT documentation.
Dev: the 50-speaker development set used by the common recipes (e.g. Kaldi's egs/timit), drawn
from the complete test set and disjoint from the core test speakers.
"""

CORE_TEST_SPEAKERS: frozenset[str] = frozenset(s.upper() for s in """
mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0
mbpm0 mklt0 fnlp0 mcmj0 mjdh0 fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0
""".split())

DEV_SPEAKERS: frozenset[str] = frozenset(s.upper() for s in """
faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0
fadg0 fdms0 fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0
mbns0 mmjr0 mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0
majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1
""".split())

assert len(CORE_TEST_SPEAKERS) == 24 and len(DEV_SPEAKERS) == 50
assert not CORE_TEST_SPEAKERS & DEV_SPEAKERS
