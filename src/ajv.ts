import AjvModule from 'ajv';

/**
 * The Ajv class, for every module that validates JSON (config, policy store, API bodies).
 * ajv ships CommonJS; under NodeNext its default import is the module object, whose `default`
 * is the class (at run time either may come first, hence the fallback).
 */
export const Ajv = AjvModule.default ?? AjvModule;
