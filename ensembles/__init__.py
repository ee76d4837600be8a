"""tritonab.ensembles"""
