"""Shared core of the WeChat third-party platform: crypto, XML, configuration, store, services.

Modules import lazily what they need so that a Lambda's cold start pays only for the parts
its handler uses.
"""
