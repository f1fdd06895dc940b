"""Packaging for capjax: classic image captioning and retrieval in JAX."""

import setuptools

INSTALL_REQUIRES = [
    'absl-py>=2.0',
    'array_record>=0.5',
    'einops>=0.7',
    'flax>=0.10',
    'grain>=0.2.10',
    'jax>=0.4.35',
    'ml_collections>=0.1.1',
    'nltk>=3.8',
    'numpy>=1.26',
    'optax>=0.2.5',
    'orbax-checkpoint>=0.11',
    'pillow>=10.0',
    'tensorboardX>=2.6',
    'tensorflow-datasets>=4.9.7',
]

EXTRAS_REQUIRE = {
    # The COCO caption toolkit is a test-only reference: capjax never needs it.
    # hypothesis fuzzes the tokenizer against the toolkit's jar; keras (JAX
    # backend), torch and torchvision are the converters' parity references;
    # h5py reads Keras files (capjax imports it only to convert); msgpack (a
    # flax dependency) is the reference of the weights' structural check.
    'test': ['pytest>=8.0', 'pytest-xdist>=3.5', 'pycocoevalcap>=1.2',
             'hypothesis>=6.100', 'keras>=3.0', 'torch>=2.0',
             'torchvision>=0.15', 'h5py>=3.8', 'msgpack>=1.0'],
}

setuptools.setup(
    name='capjax',
    version='0.1.0',
    description='Speed-focused JAX/Flax image captioning and retrieval.',
    packages=setuptools.find_packages(include=['capjax', 'capjax.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
