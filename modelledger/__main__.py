from modelledger.cli import main

main()
