"""The DynamoDB store: one table for tickets, tokens, authorizations and short-lived items.

``keys`` spells every key, ``codec`` converts values through boto3's (de)serializer, ``table``
does item operations with conditions built by boto3's condition builder, and one repository per
kind of item offers named, conditional operations: ``Tickets``, ``Tokens``, ``Authorizers``,
``Transient``, together in ``repositories.Store``. Nothing outside this package builds a DynamoDB
expression or a key string. Importing this package imports nothing (boto3 comes with the
repositories, on first use).
"""
